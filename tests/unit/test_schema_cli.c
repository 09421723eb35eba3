/*
 * test_schema_cli.c - the schema keys the CLI reads (schema.c):
 * "shortNames" (found by schema_find_kind_or_short, never by
 * schema_find_kind, which manifests use) and "columns" (spec.FIELD or
 * status.KEY paths), in the embedded schema and in documents that must
 * not load.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "store/schema.h"
#include "testlib.h"

Test(schema_cli, embedded_short_names_and_columns)
{
	struct schema *s = NULL;
	struct err e = ERR_INIT;
	const struct collection *tp, *c;
	size_t i;

	cr_assert_eq(schema_load_default(&s, &e), 0, "%s", e.msg);
	tp = schema_find(s, "tool_permissions");
	cr_assert_not_null(tp);
	cr_expect_eq(schema_find_kind_or_short(s, "tp"), tp);
	cr_expect_eq(schema_find_kind_or_short(s, "ToolPermission"), tp);
	cr_expect_null(schema_find_kind(s, "tp"), "manifests take full kinds");
	cr_expect_null(schema_find_kind_or_short(s, "TP"), "exact case");
	cr_expect_eq(schema_find_kind_or_short(s, "mcp"),
		     schema_find(s, "mcp_servers"));
	cr_assert_geq(tp->ncolumns, 3);
	cr_expect_str_eq(tp->columns[2].header, "ACTION");
	cr_expect_str_eq(tp->columns[2].path, "spec.action");
	c = schema_find(s, "cron_jobs");
	for (i = 0; i < c->ncolumns; i++)
		if (!strcmp(c->columns[i].header, "NEXT RUN"))
			break;
	cr_expect_lt(i, c->ncolumns, "cron_jobs keeps its NEXT RUN column");
	cr_expect_str_eq(c->columns[i].path, "status.nextRun");
	schema_free(s);
}

#define RULES "'rules':{'list':null,'view':null,'create':null,'update':null,'delete':null}"
#define USERS "{'name':'users','id':'_pb_users_auth_','kind':'User','auth':true," \
	"'fields':[{'name':'email','type':'email'},{'name':'password','type':'password','hidden':true}]," \
	RULES "}"
#define NOTES(extra) "{'name':'notes','id':'pc_notes','kind':'Note'," extra \
	"'fields':[{'name':'title','type':'text'},{'name':'key','type':'text','secret':true}]," RULES "}"
#define DOC(colls) "{'version':1,'collections':[" USERS "," colls "]}"

static const struct {
	const char *doc, *msg;   /* msg: expected substring; NULL = loads */
} bad[] = {
	{ DOC(NOTES("'shortNames':['nt'],'columns':[{'header':'TITLE','path':'spec.title'},"
		    "{'header':'READY','path':'status.conditions.Ready.status','wide':true}],")),
	  NULL },
	{ DOC(NOTES("'shortNames':'nt',")), "'shortNames' must be an array" },
	{ DOC(NOTES("'shortNames':['Nt'],")), "shortNames[0] must be a lower-case word" },
	{ DOC(NOTES("'shortNames':[''],")), "shortNames[0] must be a lower-case word" },
	{ DOC(NOTES("'shortNames':['user'],")), "short name 'user' also names collection 'users'" },
	{ DOC(NOTES("'columns':{},")), "'columns' must be an array" },
	{ DOC(NOTES("'columns':[{'header':'X','path':'spec.nope'}],")), "path 'spec.nope' is not spec.FIELD" },
	{ DOC(NOTES("'columns':[{'header':'X','path':'spec.key'}],")), "not hidden or secret" },
	{ DOC(NOTES("'columns':[{'header':'X','path':'data.title'}],")), "path 'data.title'" },
	{ DOC(NOTES("'columns':[{'header':'X','path':'status.a..b'}],")), "path 'status.a..b'" },
	{ DOC(NOTES("'columns':[{'header':'X','path':'status.'}],")), "path 'status.'" },
	{ DOC(NOTES("'columns':[{'header':'','path':'spec.title'}],")), "'header' must be 1 to 32 bytes" },
	{ DOC(NOTES("'columns':[{'header':'X','path':'spec.title','width':3}],")), "unknown key 'width'" },
	{ DOC(NOTES("'columns':[{'path':'spec.title'}],")), "missing 'header'" },
};

Test(schema_cli, bad_documents)
{
	struct schema *s;
	struct err e;
	char *text;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		text = tl_quotes(bad[i].doc);
		cr_assert_not_null(text);
		s = NULL;
		err_clear(&e);
		rc = schema_load(&s, text, strlen(text), &e);
		if (!bad[i].msg) {
			cr_expect_eq(rc, 0, "row %zu: %s", i, e.msg);
			cr_expect_eq(schema_find_kind_or_short(s, "nt"),
				     schema_find(s, "notes"), "row %zu", i);
		} else {
			cr_expect_eq(rc, ERR_INVALID, "row %zu loaded", i);
			cr_expect_null(s, "row %zu", i);
			cr_expect_not_null(strstr(e.msg, bad[i].msg),
					   "row %zu: '%s' lacks '%s'", i, e.msg,
					   bad[i].msg);
		}
		schema_free(s);
		free(text);
	}
}
