/*
 * test_relfilter.c - a caller's filter through relations sees only what
 * the caller may see (filter_compile_caller()): each hop carries the
 * target's view rule, an auth collection's email needs the caller to be
 * that record, an admin or emailVisibility, and a hidden record matches
 * no comparison at all. Run on a real store in a temporary directory,
 * with a small schema whose members may view one another (so the email
 * condition is seen on its own) and vaults only their owner may view.
 * Also the owner-field test rules.c builds on (filter_compares_auth_id()).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "store/filter.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

static const char rf_schema_json[] =
	"{'version': 1, 'collections': ["
	" {'name': 'members', 'id': 'pc_members', 'kind': 'Member',"
	"  'auth': true,"
	"  'fields': [{'name': 'email', 'type': 'email'},"
	"             {'name': 'emailVisibility', 'type': 'bool'},"
	"             {'name': 'password', 'type': 'password'},"
	"             {'name': 'tokenKey', 'type': 'text', 'hidden': true},"
	"             {'name': 'name', 'type': 'text'}],"
	"  'rules': {'list': '', 'view': '', 'create': null,"
	"            'update': null, 'delete': null}},"
	" {'name': 'notes', 'id': 'pc_notes', 'kind': 'Note',"
	"  'fields': [{'name': 'text', 'type': 'text'},"
	"             {'name': 'author', 'type': 'relation',"
	"              'collection': 'members'},"
	"             {'name': 'vault', 'type': 'relation',"
	"              'collection': 'vaults'},"
	"             {'name': 'sealed', 'type': 'relation',"
	"              'collection': 'seals'}],"
	"  'rules': {'list': '', 'view': '', 'create': null,"
	"            'update': null, 'delete': null}},"
	" {'name': 'vaults', 'id': 'pc_vaults', 'kind': 'Vault',"
	"  'fields': [{'name': 'title', 'type': 'text'},"
	"             {'name': 'owner', 'type': 'relation',"
	"              'collection': 'members'}],"
	"  'rules': {'list': 'owner = @request.auth.id',"
	"            'view': 'owner = @request.auth.id', 'create': null,"
	"            'update': null, 'delete': null}},"
	" {'name': 'seals', 'id': 'pc_seals', 'kind': 'Seal',"
	"  'fields': [{'name': 'title', 'type': 'text'}],"
	"  'rules': {'list': null, 'view': null, 'create': null,"
	"            'update': null, 'delete': null}}"
	"]}";

static char rf_dir[512];
static struct schema *rf_sch;
static struct store *rf_st;
static char rf_ann[32], rf_ben[32], rf_cid[32];   /* members */
static char rf_vault[32];                         /* ann's */

static void rf_setup(void)
{
	char buf[512], seal[32];

	tl_store_setup(rf_dir, sizeof(rf_dir), "relfilter", rf_schema_json, 0,
		       &rf_sch, &rf_st);
	/* ann hides her email, ben shows his, cid is the one asking */
	tl_create(rf_st, "members",
		  "{'email': 'ann@x.io', 'password': 'h', 'tokenKey': 'k'}",
		  rf_ann);
	tl_create(rf_st, "members",
		  "{'email': 'ben@x.io', 'password': 'h',"
		  " 'emailVisibility': true}", rf_ben);
	tl_create(rf_st, "members", "{'email': 'cid@x.io', 'password': 'h'}",
		  rf_cid);
	snprintf(buf, sizeof(buf), "{'title': 'v', 'owner': '%s'}", rf_ann);
	tl_create(rf_st, "vaults", buf, rf_vault);
	tl_create(rf_st, "seals", "{'title': 's'}", seal);
	snprintf(buf, sizeof(buf),
		 "{'text': 'by ann', 'author': '%s', 'vault': '%s',"
		 " 'sealed': '%s'}", rf_ann, rf_vault, seal);
	tl_create(rf_st, "notes", buf, NULL);
	snprintf(buf, sizeof(buf), "{'text': 'by ben', 'author': '%s'}",
		 rf_ben);
	tl_create(rf_st, "notes", buf, NULL);
}

static void rf_teardown(void)
{
	tl_store_teardown(rf_dir, &rf_sch, &rf_st);
}

TestSuite(relfilter, .init = rf_setup, .fini = rf_teardown);

/* How many notes expr finds for the member id (NULL: a guest), as a
 * caller's filter (guarded) or as a rule (not). */
static int64_t rf_count(const char *id, bool admin, bool superuser,
			bool guarded, const char *expr)
{
	const struct collection *c = schema_find(rf_sch, "notes");
	json_t *rec = id ? json_pack("{s:s}", "id", id) : NULL;
	struct filter_auth fa = { superuser, rec, NULL };
	struct query_pred *p = NULL;
	struct store_query q;
	struct err e = ERR_INIT;
	int64_t n = -1;
	int rc;

	cr_assert_not_null(c);
	rc = guarded ? filter_compile_caller(rf_sch, c, expr, &fa, admin, &p,
					     &e)
		     : filter_compile(rf_sch, c, expr, &fa, &p, &e);
	cr_assert_eq(rc, 0, "%s: %s", expr, e.msg);
	memset(&q, 0, sizeof(q));
	q.where = p;
	rc = store_count(rf_st, "notes", &q, &n, &e);
	cr_assert_eq(rc, 0, "%s: %s", expr, e.msg);
	query_pred_free(p);
	json_decref(rec);
	return n;
}

Test(relfilter, email_through_a_relation_only_where_visible)
{
	/* cid sees ben's email (emailVisibility) but not ann's */
	cr_expect_eq(rf_count(rf_cid, false, false, true,
			      "author.email ~ '@x.io'"), 1);
	cr_expect_eq(rf_count(rf_cid, false, false, true,
			      "author.email ~ 'a%'"), 0);
	cr_expect_eq(rf_count(rf_cid, false, false, true,
			      "author.email !~ 'a%'"), 1);   /* ben's only */
	/* other fields of a member cid may view stay readable */
	cr_expect_eq(rf_count(rf_cid, false, false, true,
			      "author.id != ''"), 2);
	/* ann is the record itself; an admin and a superuser see all */
	cr_expect_eq(rf_count(rf_ann, false, false, true,
			      "author.email ~ 'a%'"), 1);
	cr_expect_eq(rf_count(rf_cid, true, false, true,
			      "author.email ~ '@x.io'"), 2);
	cr_expect_eq(rf_count(NULL, false, true, true,
			      "author.email ~ '@x.io'"), 2);
	/* a guest: ben's only */
	cr_expect_eq(rf_count(NULL, false, false, true,
			      "author.email ~ '@x.io'"), 1);
	/* rules are trusted and unguarded */
	cr_expect_eq(rf_count(rf_cid, false, false, false,
			      "author.email ~ '@x.io'"), 2);
}

Test(relfilter, a_hop_carries_the_target_view_rule)
{
	/* only ann may view her vault */
	cr_expect_eq(rf_count(rf_ann, false, false, true,
			      "vault.title = 'v'"), 1);
	cr_expect_eq(rf_count(rf_cid, false, false, true,
			      "vault.title = 'v'"), 0);
	cr_expect_eq(rf_count(rf_cid, false, false, true,
			      "vault.title != 'v'"), 0);
	cr_expect_eq(rf_count(rf_cid, false, false, true,
			      "vault.owner = '' || vault.owner != ''"), 0);
	/* two hops: the vault's rule and the member's email rule */
	cr_expect_eq(rf_count(rf_cid, false, false, true,
			      "vault.owner.email ~ 'ann'"), 0);
	cr_expect_eq(rf_count(rf_ann, false, false, true,
			      "vault.owner.email ~ 'ann'"), 1);
	/* the relation's own value is the note's */
	cr_expect_eq(rf_count(rf_cid, false, false, true, "vault != ''"), 1);
	/* a NULL view rule: nothing but for superusers */
	cr_expect_eq(rf_count(rf_ann, true, false, true,
			      "sealed.title = 's'"), 0);
	cr_expect_eq(rf_count(NULL, false, true, true,
			      "sealed.title = 's'"), 1);
	cr_expect_eq(rf_count(rf_cid, false, false, false,
			      "vault.title = 'v'"), 1);
}

Test(relfilter, hidden_fields_through_a_relation_are_refused)
{
	const struct collection *c = schema_find(rf_sch, "notes");
	json_t *rec = json_pack("{s:s}", "id", rf_cid);
	struct filter_auth fa = { false, rec, NULL };
	struct query_pred *p = NULL;
	struct err e = ERR_INIT;

	cr_assert_eq(filter_compile_caller(rf_sch, c, "author.tokenKey = 'k'",
					   &fa, false, &p, &e), ERR_INVALID);
	cr_expect_null(p);
	cr_expect_str_eq(e.field, "filter");
	cr_expect(strstr(e.msg, "cannot be filtered") != NULL, "%s", e.msg);
	cr_expect(strstr(e.msg, "position 1") != NULL, "%s", e.msg);
	json_decref(rec);
}

Test(relfilter, owner_fields_are_found_in_rule_text)
{
	cr_expect(filter_compares_auth_id("user = @request.auth.id", "user"));
	cr_expect(filter_compares_auth_id("@request.auth.id = user", "user"));
	cr_expect(filter_compares_auth_id(
		"@request.auth.id != \"\" && (user = @request.auth.id || "
		"@request.auth.role = \"admin\")", "user"));
	cr_expect(!filter_compares_auth_id("chat.user = @request.auth.id",
					   "user"));
	cr_expect(!filter_compares_auth_id("user != @request.auth.id",
					   "user"));
	cr_expect(!filter_compares_auth_id("user = @request.auth.role",
					   "user"));
	cr_expect(!filter_compares_auth_id("owner = @request.auth.id",
					   "user"));
	cr_expect(!filter_compares_auth_id("user = = (", "user"));
	cr_expect(!filter_compares_auth_id("", "user"));
	cr_expect(!filter_compares_auth_id(NULL, "user"));
}
