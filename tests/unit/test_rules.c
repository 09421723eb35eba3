/*
 * test_rules.c - access rules applied to callers (rules.c) and relation
 * expansion through them (expand.c), against a real store in a temporary
 * directory with the embedded schema: who may list, view and create what,
 * and what an expansion shows each caller.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "server/expand.h"
#include "server/rules.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

static char rt_dir[256];
static struct schema *rt_sch;
static struct store *rt_st;
static char rt_alice[ID_LEN + 1], rt_bob[ID_LEN + 1], rt_root[ID_LEN + 1];
static char rt_chat[ID_LEN + 1], rt_prompt[ID_LEN + 1], rt_agent[ID_LEN + 1];
static json_t *rt_alice_rec, *rt_bob_rec, *rt_root_rec;

/* A caller's auth record as the server builds it: field data plus "id". */
static json_t *rt_auth_record(const char *id, const char *role)
{
	return json_pack("{s:s, s:s}", "id", id, "role", role);
}

static void rt_setup(void)
{
	char buf[512];

	tl_store_setup(rt_dir, sizeof(rt_dir), "rules", NULL, 0, &rt_sch,
		       &rt_st);
	tl_create(rt_st, "users",
		  "{'email': 'alice@x.io', 'password': 'h', 'role': 'user'}",
		  rt_alice);
	tl_create(rt_st, "users",
		  "{'email': 'bob@x.io', 'password': 'h', 'role': 'user'}",
		  rt_bob);
	tl_create(rt_st, "users",
		  "{'email': 'root@x.io', 'password': 'h', 'role': 'admin'}",
		  rt_root);
	snprintf(buf, sizeof(buf), "{'title': 't', 'user': '%s'}", rt_alice);
	tl_create(rt_st, "chats", buf, rt_chat);
	tl_create(rt_st, "ai_prompts", "{'name': 'p', 'body': 'b'}", rt_prompt);
	snprintf(buf, sizeof(buf), "{'name': 'a', 'prompt': '%s'}", rt_prompt);
	tl_create(rt_st, "ai_agents", buf, rt_agent);
	rt_alice_rec = rt_auth_record(rt_alice, "user");
	rt_bob_rec = rt_auth_record(rt_bob, "user");
	rt_root_rec = rt_auth_record(rt_root, "admin");
}

static void rt_teardown(void)
{
	tl_store_teardown(rt_dir, &rt_sch, &rt_st);
	json_decref(rt_alice_rec);
	json_decref(rt_bob_rec);
	json_decref(rt_root_rec);
}

TestSuite(rules, .init = rt_setup, .fini = rt_teardown);

static const struct collection *rt_coll(const char *name)
{
	const struct collection *c = schema_find(rt_sch, name);

	cr_assert_not_null(c, "no collection %s", name);
	return c;
}

/* How many records of coll the caller may list. */
static int64_t rt_count(const char *coll, const struct filter_auth *fa,
			int *rc_out)
{
	struct err e = ERR_INIT;
	struct query_pred *where = NULL;
	struct store_query q;
	int64_t n = -1;
	int rc;

	rc = rules_where(rt_sch, rt_coll(coll), RULE_LIST, fa, &where, &e);
	if (!rc) {
		memset(&q, 0, sizeof(q));
		q.where = where;
		rc = store_count(rt_st, coll, &q, &n, &e);
		cr_assert_eq(rc, 0, "%s", e.msg);
	}
	*rc_out = rc;
	query_pred_free(where);
	return n;
}

Test(rules, list_by_caller)
{
	struct filter_auth guest = { false, NULL, NULL };
	struct filter_auth alice = { false, rt_alice_rec, NULL };
	struct filter_auth bob = { false, rt_bob_rec, NULL };
	struct filter_auth root = { false, rt_root_rec, NULL };
	struct filter_auth su = { true, NULL, NULL };
	struct {
		const char *coll;
		const struct filter_auth *who;
		int rc;
		int64_t n;
	} cases[] = {
		{ "ai_prompts", &guest, 0, 0 },      /* rule needs auth */
		{ "ai_prompts", &alice, 0, 1 },
		{ "chats", &alice, 0, 1 },           /* her own */
		{ "chats", &bob, 0, 0 },             /* not his */
		{ "chats", &root, 0, 1 },            /* admin */
		{ "users", &alice, 0, 1 },           /* only herself */
		{ "users", &root, 0, 3 },
		{ "users", &su, 0, 3 },
		{ "_superusers", &root, ERR_FORBIDDEN, -1 },   /* NULL rule */
		{ "_superusers", &su, 0, 0 },
	};
	size_t i;
	int rc;
	int64_t n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = rt_count(cases[i].coll, cases[i].who, &rc);
		cr_assert_eq(rc, cases[i].rc, "case %zu (%s): rc %d", i,
			     cases[i].coll, rc);
		cr_assert_eq(n, cases[i].n, "case %zu (%s): %lld records", i,
			     cases[i].coll, (long long)n);
	}
}

Test(rules, forbidden_message_is_pocketbase_s)
{
	struct filter_auth alice = { false, rt_alice_rec, NULL };
	struct err e = ERR_INIT;
	struct query_pred *where = NULL;

	cr_assert_eq(rules_where(rt_sch, rt_coll("ai_prompts"), RULE_CREATE,
				 &alice, &where, &e), ERR_FORBIDDEN);
	cr_assert_str_eq(e.msg, "Only superusers can perform this action.");
	cr_assert_null(where, "no condition given");
}

Test(rules, view_hides_what_the_rule_hides)
{
	struct filter_auth alice = { false, rt_alice_rec, NULL };
	struct filter_auth bob = { false, rt_bob_rec, NULL };
	struct filter_auth su = { true, NULL, NULL };
	struct err e = ERR_INIT;
	struct record rec;

	cr_assert_eq(rules_get(rt_st, rt_sch, rt_coll("chats"), RULE_VIEW,
			       rt_chat, &alice, &rec, &e), 0, "%s", e.msg);
	cr_assert_str_eq(rec.id, rt_chat);
	record_release(&rec);
	cr_assert_eq(rules_get(rt_st, rt_sch, rt_coll("chats"), RULE_VIEW,
			       rt_chat, &bob, &rec, &e), ERR_NOT_FOUND);
	cr_assert_null(rec.data);
	cr_assert_eq(rules_get(rt_st, rt_sch, rt_coll("chats"), RULE_VIEW,
			       rt_chat, &su, &rec, &e), 0);
	record_release(&rec);
	cr_assert_eq(rules_get(rt_st, rt_sch, rt_coll("chats"), RULE_VIEW,
			       "../../etc/pass", &su, &rec, &e), ERR_NOT_FOUND);
	cr_assert_eq(rules_get(rt_st, rt_sch, rt_coll("chats"), RULE_VIEW,
			       "zzzzzzzzzzzzzzz", &alice, &rec, &e),
		     ERR_NOT_FOUND);
	cr_assert_eq(rules_get(rt_st, rt_sch, rt_coll("_superusers"),
			       RULE_VIEW, rt_alice, &alice, &rec, &e),
		     ERR_FORBIDDEN);
}

/* The create rule of chats (user = @request.auth.id) against a new row,
 * inside the transaction, which is then abandoned. */
static int rt_create_allowed(const char *owner, const struct filter_auth *fa)
{
	struct err e = ERR_INIT;
	struct store_txn *t = NULL;
	struct store_put p;
	struct record rec;
	char buf[128];
	json_t *data;
	int ok;

	snprintf(buf, sizeof(buf), "{\"title\":\"n\",\"user\":\"%s\"}", owner);
	data = json_loads(buf, 0, NULL);
	memset(&p, 0, sizeof(p));
	p.collection = "chats";
	p.data = data;
	p.mode = STORE_CREATE;
	cr_assert_eq(store_begin(rt_st, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_txn_put(t, &p, &rec, NULL, &e), 0, "%s", e.msg);
	ok = rules_txn_check(t, rt_sch, rt_coll("chats"), RULE_CREATE, rec.id,
			     fa, &e);
	store_abort(t);
	record_release(&rec);
	json_decref(data);
	return ok;
}

Test(rules, create_rule_sees_the_new_row)
{
	struct filter_auth alice = { false, rt_alice_rec, NULL };
	struct filter_auth bob = { false, rt_bob_rec, NULL };
	struct filter_auth su = { true, NULL, NULL };
	struct filter_auth guest = { false, NULL, NULL };
	int rc;
	int64_t n;

	cr_assert_eq(rt_create_allowed(rt_alice, &alice), 1);
	cr_assert_eq(rt_create_allowed(rt_alice, &bob), 0);
	cr_assert_eq(rt_create_allowed(rt_bob, &bob), 1);
	cr_assert_eq(rt_create_allowed(rt_bob, &guest), 0);
	cr_assert_eq(rt_create_allowed(rt_bob, &su), 1);
	/* every transaction above was abandoned */
	n = rt_count("chats", &su, &rc);
	cr_assert_eq(n, 1);
}

/* expand's renderer: the plain record JSON. */
static json_t *rt_render(const struct collection *c, const struct record *r,
			 void *arg)
{
	int *calls = arg;

	(*calls)++;
	return json_pack("{s:s, s:s, s:O}", "id", r->id, "collectionName",
			 c->name, "data", r->data);
}

static json_t *rt_expand(const char *coll, const char *id, const char *spec,
			 const struct filter_auth *fa, int *calls)
{
	struct expand_ctx x;
	struct err e = ERR_INIT;
	struct record rec;
	json_t *tree = NULL, *obj;

	cr_assert_eq(store_get(rt_st, coll, id, &rec, &e), 0, "%s", e.msg);
	cr_assert_eq(expand_parse(spec, &tree, &e), 0, "%s", e.msg);
	memset(&x, 0, sizeof(x));
	x.store = rt_st;
	x.schema = rt_sch;
	x.auth = fa;
	x.render = rt_render;
	x.render_arg = calls;
	obj = json_object();
	cr_assert_eq(expand_apply(&x, rt_coll(coll), rec.data, obj, tree, &e),
		     0, "%s", e.msg);
	expand_release(&x);
	json_decref(tree);
	record_release(&rec);
	return obj;
}

Test(rules, expand_follows_view_rules)
{
	struct filter_auth guest = { false, NULL, NULL };
	struct filter_auth alice = { false, rt_alice_rec, NULL };
	struct filter_auth bob = { false, rt_bob_rec, NULL };
	int calls = 0;
	json_t *o;

	o = rt_expand("ai_agents", rt_agent, "prompt,model,name,nope", &alice,
		      &calls);
	cr_assert_str_eq(json_string_value(json_object_get(
		json_object_get(json_object_get(o, "expand"), "prompt"), "id")),
		rt_prompt);
	cr_assert_eq(json_object_size(json_object_get(o, "expand")), 1,
		     "empty relation, text field and unknown name left out");
	cr_assert_eq(calls, 1);
	json_decref(o);

	/* a guest may not view prompts: no "expand" at all */
	o = rt_expand("ai_agents", rt_agent, "prompt", &guest, &calls);
	cr_assert_null(json_object_get(o, "expand"));
	json_decref(o);

	/* nested, and the chat's owner is visible to alice only */
	o = rt_expand("chats", rt_chat, "user", &alice, &calls);
	cr_assert_not_null(json_object_get(json_object_get(o, "expand"), "user"));
	json_decref(o);
	o = rt_expand("chats", rt_chat, "user", &bob, &calls);
	cr_assert_null(json_object_get(o, "expand"));
	json_decref(o);
}
