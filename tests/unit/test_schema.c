/*
 * test_schema.c - unit tests for the schema module: the embedded
 * schema/collections.json loads and says what the reference requires, kind
 * lookup, refusal of bad schema documents, and a table of schema_normalize
 * cases (good values and their normal form, bad values and the field and
 * message they are refused with).
 *
 * JSON in the tables is written with ' for " to stay readable; tl_json() swaps
 * them back.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store/schema.h"
#include "testlib.h"

/* ---- the embedded schema ------------------------------------------------ */

static const struct {
	const char *name, *kind;
} sch_expected[] = {
	{ "users", "User" },
	{ "_superusers", "Superuser" },
	{ "ai_prompts", "AiPrompt" },
	{ "ai_models", "AiModel" },
	{ "ai_agents", "AiAgent" },
	{ "chats", "Chat" },
	{ "messages", "Message" },
	{ "permissions", "Permission" },
	{ "sandbox_agents", "SandboxAgent" },
	{ "ssh_keys", "SshKey" },
	{ "tool_permissions", "ToolPermission" },
	{ "healthchecks", "Healthcheck" },
	{ "mcp_servers", "McpServer" },
	{ "proposals", "Proposal" },
	{ "sops", "Sop" },
	{ "questions", "Question" },
	{ "devices", "Device" },
	{ "llm_keys", "LlmKey" },
	{ "model_selection", "ModelSelection" },
	{ "llm_providers", "LlmProvider" },
	{ "notification_rules", "NotificationRule" },
	{ "cron_jobs", "CronJob" },
	{ "containers", "Container" },
	{ "notifications", "Notification" },
	{ "reconcile_status", "ReconcileStatus" },
};

Test(schema, default_has_every_collection)
{
	struct schema *s = tl_schema();
	const struct collection *c;
	char id[80];
	size_t i;

	cr_expect_geq(s->version, 1);
	cr_expect_eq(s->ncollections,
		     sizeof(sch_expected) / sizeof(sch_expected[0]));
	for (i = 0; i < sizeof(sch_expected) / sizeof(sch_expected[0]); i++) {
		c = schema_find(s, sch_expected[i].name);
		cr_assert_not_null(c, "collection %s", sch_expected[i].name);
		cr_expect_str_eq(c->kind, sch_expected[i].kind);
		cr_expect_eq(schema_find_kind(s, sch_expected[i].kind), c);
		if (strcmp(c->name, "users") == 0) {
			cr_expect_str_eq(c->id, "_pb_users_auth_");
			cr_expect(c->auth);
		} else if (strcmp(c->name, "_superusers") == 0) {
			/* PocketBase's fixed id: the SDK recognises it. */
			cr_expect_str_eq(c->id, "pbc_3142635823");
			cr_expect(c->auth);
		} else {
			snprintf(id, sizeof(id), "pc_%s", c->name);
			cr_expect_str_eq(c->id, id);
			cr_expect_not(c->auth, "%s", c->name);
		}
		cr_expect_eq(schema_find_by_id(s, c->id), c);
	}
	schema_free(s);
}

Test(schema, default_relations_and_flags)
{
	struct schema *s = tl_schema();
	const struct collection *c;
	const struct field *f;
	size_t i, j;

	for (i = 0; i < s->ncollections; i++) {
		c = &s->collections[i];
		cr_expect_null(collection_field(c, "created"), "%s", c->name);
		cr_expect_null(collection_field(c, "updated"), "%s", c->name);
		for (j = 0; j < c->nfields; j++) {
			f = &c->fields[j];
			if (f->type == FT_RELATION)
				cr_expect_not_null(schema_find(s, f->target),
						   "%s.%s -> %s", c->name,
						   f->name, f->target);
			if (f->type == FT_TEXT)
				cr_expect_gt(f->max_size, 0);
		}
		if (c->owner_field) {
			f = collection_field(c, c->owner_field);
			cr_assert_not_null(f);
			cr_expect_str_eq(f->target, "users");
		}
	}

	/* The §13 fixes, spot-checked in the data. */
	c = schema_find(s, "users");
	cr_expect_null(c->rules[RULE_CREATE]);
	cr_expect(collection_field(c, "role")->system);
	cr_expect(collection_field(c, "verified")->system);
	cr_expect(collection_field(c, "password")->hidden);
	cr_expect(collection_field(c, "tokenKey")->hidden);
	cr_expect_eq(collection_field(c, "email")->type, FT_EMAIL);

	c = schema_find(s, "sops");
	cr_expect_not(c->api_writable);
	cr_expect_null(c->rules[RULE_CREATE]);
	cr_expect_null(c->rules[RULE_UPDATE]);
	cr_expect_eq(collection_field(c, "version")->only_int, true);
	cr_expect_not_null(collection_field(c, "prev_hash"));
	cr_expect_str_eq(collection_field(c, "sealed_by")->target, "users");

	c = schema_find(s, "llm_keys");
	cr_expect(collection_field(c, "env_vars")->secret);
	cr_expect_str_eq(c->owner_field, "user");
	c = schema_find(s, "mcp_servers");
	cr_expect(collection_field(c, "config")->secret);
	cr_expect_str_eq(c->name_field, "name");
	cr_expect_str_eq(json_string_value(collection_field(c, "catalog")->def),
			 "docker-mcp");

	c = schema_find(s, "ai_agents");
	f = collection_field(c, "mode");
	cr_assert_eq(f->nvalues, 3);
	cr_expect_str_eq(f->values[0], "primary");
	cr_expect_str_eq(f->values[1], "subagent");
	cr_expect_str_eq(f->values[2], "all");

	c = schema_find(s, "tool_permissions");
	cr_assert_eq(c->nindexes, 1);
	cr_expect(c->indexes[0].unique);
	cr_expect_eq(c->indexes[0].nfields, 3);
	cr_expect(collection_field(c, "priority")->only_int);

	c = schema_find(s, "messages");
	cr_expect_eq(collection_field(c, "error_payload")->max_size,
		     (size_t)1 << 20);
	cr_expect(collection_field(c, "chat")->cascade);

	c = schema_find(s, "permissions");
	cr_expect(collection_field(c, "approved_by")->system);
	cr_expect_not_null(strstr(c->rules[RULE_UPDATE], "status = \"draft\""));
	cr_expect_str_eq(c->rules[RULE_DELETE], "@request.auth.role = \"admin\"");

	c = schema_find(s, "cron_jobs");
	cr_expect_not_null(strstr(c->rules[RULE_CREATE],
				  "user = @request.auth.id"));
	schema_free(s);
}

Test(schema, default_name_fields)
{
	static const char *const named[] = {
		"ai_prompts", "ai_models", "ai_agents", "mcp_servers",
		"proposals", "healthchecks", "containers", "notifications",
		"reconcile_status",
	};
	struct schema *s = tl_schema();
	const struct collection *c;
	size_t i, j, n = 0;
	bool unique;

	for (i = 0; i < s->ncollections; i++) {
		c = &s->collections[i];
		if (c->name_field)
			n++;
	}
	cr_expect_eq(n, sizeof(named) / sizeof(named[0]));
	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		c = schema_find(s, named[i]);
		cr_assert_not_null(c);
		cr_expect_str_eq(c->name_field, "name", "%s", named[i]);
		unique = false;
		for (j = 0; j < c->nindexes; j++)
			if (c->indexes[j].unique && c->indexes[j].nfields == 1 &&
			    strcmp(c->indexes[j].fields[0], "name") == 0)
				unique = true;
		cr_expect(unique, "%s has a unique index on name", named[i]);
	}
	schema_free(s);
}

static size_t sch_pos(const struct collection **order, size_t n,
		      const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(order[i]->name, name) == 0)
			return i;
	cr_assert_fail("%s not in topological order", name);
	return n;
}

Test(schema, topo_order)
{
	struct schema *s = tl_schema();
	const struct collection **order;
	const struct field *f;
	size_t i, j, n = s->ncollections;

	order = calloc(n, sizeof(*order));
	cr_assert_not_null(order);
	schema_topo_order(s, order);
	cr_expect_lt(sch_pos(order, n, "ai_prompts"), sch_pos(order, n, "ai_agents"));
	cr_expect_lt(sch_pos(order, n, "ai_models"), sch_pos(order, n, "ai_agents"));
	cr_expect_lt(sch_pos(order, n, "users"), sch_pos(order, n, "chats"));
	cr_expect_lt(sch_pos(order, n, "chats"), sch_pos(order, n, "messages"));
	/* In general: every target strictly before its referrers. */
	for (i = 0; i < n; i++)
		for (j = 0; j < order[i]->nfields; j++) {
			f = &order[i]->fields[j];
			if (f->type == FT_RELATION &&
			    strcmp(f->target, order[i]->name) != 0)
				cr_expect_lt(sch_pos(order, n, f->target), i,
					     "%s before %s", f->target,
					     order[i]->name);
		}
	free(order);
	schema_free(s);
}

Test(schema, find_kind_variants)
{
	static const struct {
		const char *query, *want;   /* want NULL: no match */
	} rows[] = {
		{ "McpServer", "mcp_servers" },
		{ "mcpserver", "mcp_servers" },
		{ "MCPSERVER", "mcp_servers" },
		{ "mcp_servers", "mcp_servers" },
		{ "mcpservers", "mcp_servers" },
		{ "McpServers", "mcp_servers" },
		{ "User", "users" },
		{ "users", "users" },
		{ "ModelSelection", "model_selection" },
		{ "model_selection", "model_selection" },
		{ "Sop", "sops" },
		{ "cronjob", "cron_jobs" },
		{ "Container", "containers" },
		{ "mcp", NULL },
		{ "McpServerss", NULL },
		{ "", NULL },
		{ "_", NULL },
	};
	struct schema *s = tl_schema();
	const struct collection *c;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		c = schema_find_kind(s, rows[i].query);
		if (!rows[i].want) {
			cr_expect_null(c, "'%s' matched %s", rows[i].query,
				       c ? c->name : "");
			continue;
		}
		cr_assert_not_null(c, "'%s'", rows[i].query);
		cr_expect_str_eq(c->name, rows[i].want, "'%s'", rows[i].query);
	}
	cr_expect_null(schema_find(s, "McpServer"));
	cr_expect_null(schema_find(s, NULL));
	cr_expect_null(schema_find_kind(s, NULL));
	cr_expect_null(collection_field(schema_find(s, "chats"), "nope"));
	schema_free(s);
}

Test(schema, default_text)
{
	size_t len = 0;
	const char *t = schema_default_text(&len);

	cr_assert_not_null(t);
	cr_expect_gt(len, 100);
	cr_expect_eq(t[len], '\0');
	cr_expect_eq(strlen(t), len);
	cr_expect_str_eq(field_type_name(FT_RELATION), "relation");
	cr_expect_str_eq(field_type_name((enum field_type)99), "unknown");
}

/* ---- bad schema documents ---------------------------------------------- */

#define SCH_RULES "'rules':{'list':null,'view':null,'create':null,'update':null,'delete':null}"
#define SCH_USERS "{'name':'users','id':'_pb_users_auth_','kind':'User','auth':true," \
	"'fields':[{'name':'email','type':'email'},{'name':'password','type':'password'}]," \
	SCH_RULES "}"
/* A notes collection with the given extra members and fields. */
#define SCH_NOTES(extra, fields) "{'name':'notes','id':'pc_notes','kind':'Note'," extra \
	"'fields':[{'name':'title','type':'text'}" fields "]," SCH_RULES "}"
#define SCH_DOC(colls) "{'version':1,'collections':[" SCH_USERS "," colls "]}"

static const struct {
	const char *doc, *msg;   /* msg: expected substring; NULL = loads */
} sch_bad[] = {
	{ SCH_DOC(SCH_NOTES("", "")), NULL },
	{ SCH_DOC(SCH_NOTES("'nameField':'title','ownerField':'owner',",
			    ",{'name':'owner','type':'relation','collection':'users'}")),
	  NULL },
	{ "{", "schema: line" },
	{ "[]", "schema: must be an object, got an array" },
	{ "{'version':1,'collections':[" SCH_USERS "],'extra':1}",
	  "schema: unknown key 'extra'" },
	{ "{'collections':[" SCH_USERS "]}", "'version' must be a positive integer" },
	{ "{'version':'1','collections':[" SCH_USERS "]}", "'version' must be" },
	{ "{'version':1,'collections':[]}", "'collections' must be an array" },
	{ "{'version':1,'version':2,'collections':[]}", "duplicate object key" },
	{ SCH_DOC(SCH_NOTES("'colour':'red',", "")),
	  "collection 'notes': unknown key 'colour'" },
	{ SCH_DOC("{'name':'Notes','id':'pc_notes','kind':'Note','fields':[]}"),
	  "invalid collection name 'Notes'" },
	{ SCH_DOC("{'name':'notes','id':'pc_notes','kind':'note','fields':[]}"),
	  "collection 'notes': invalid kind 'note'" },
	{ SCH_DOC("{'name':'notes','kind':'Note','fields':[]}"),
	  "collection 'notes': missing 'id'" },
	{ SCH_DOC("{'name':'notes','id':'pc_notes','kind':'Note','fields':[]," SCH_RULES "}"),
	  "collection 'notes': 'fields' must be a non-empty array" },
	{ SCH_DOC("{'name':'notes','id':'pc_notes','kind':'Note',"
		  "'fields':[{'name':'title','type':'text'}]}"),
	  "collection 'notes': missing 'rules'" },
	{ SCH_DOC("{'name':'notes','id':'pc_notes','kind':'Note',"
		  "'fields':[{'name':'title','type':'text'}],'rules':{'list':null}}"),
	  "collection 'notes' rules: missing 'view'" },
	{ SCH_DOC("{'name':'notes','id':'pc_notes','kind':'Note',"
		  "'fields':[{'name':'title','type':'text'}],'rules':{'list':1,"
		  "'view':null,'create':null,'update':null,'delete':null}}"),
	  "'list' must be a string or null, got a number" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'body','type':'texty'}")),
	  "collection 'notes' field 'body': unknown field type 'texty'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'body','type':'text','colour':1}")),
	  "collection 'notes' field 'body': unknown key 'colour'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'body','type':'text','required':'yes'}")),
	  "collection 'notes' field 'body': 'required' must be a boolean, got a string" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'body'}")),
	  "collection 'notes' field 'body': missing 'type'" },
	{ SCH_DOC(SCH_NOTES("", ",{'type':'text'}")),
	  "collection 'notes' field #2: missing 'name'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'id','type':'text'}")),
	  "invalid field name 'id'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'created','type':'date'}")),
	  "invalid field name 'created'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'a-b','type':'text'}")),
	  "invalid field name 'a-b'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'title','type':'text'}")),
	  "collection 'notes': duplicate field 'title'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'owner','type':'relation','collection':'people'}")),
	  "collection 'notes' field 'owner': relation to unknown collection 'people'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'owner','type':'relation'}")),
	  "collection 'notes' field 'owner': missing 'collection'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'body','type':'text','collection':'users'}")),
	  "'collection' and 'cascadeDelete' are only valid for relation fields" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'body','type':'text','values':['a']}")),
	  "collection 'notes' field 'body': 'values' is only valid for select fields" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'mode','type':'select'}")),
	  "collection 'notes' field 'mode': 'values' must be a non-empty array" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'mode','type':'select','values':['a','a']}")),
	  "collection 'notes' field 'mode': duplicate select value 'a'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'mode','type':'select','values':['a','']}")),
	  "select value #2 must be a non-empty string" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'n','type':'number','min':5,'max':1}")),
	  "collection 'notes' field 'n': 'min' is above 'max'" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'n','type':'number','min':'1'}")),
	  "'min' must be a number, got a string" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'b','type':'bool','maxSize':10}")),
	  "collection 'notes' field 'b': 'maxSize' is only valid for" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'t','type':'text','maxSize':0}")),
	  "'maxSize' must be an integer from 1" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'b','type':'bool','onlyInt':true}")),
	  "'onlyInt' are only valid for number fields" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'t','type':'text','default':5}")),
	  "collection 'notes' field 't': default: expected a string, got a number" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'m','type':'select','values':['a'],'default':'b'}")),
	  "field 'm': default: value 'b' is not one of a" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'n','type':'number','max':3,'default':4}")),
	  "field 'n': default: value 4 is more than the maximum 3" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'t','type':'text','required':true,'default':''}")),
	  "field 't': the default of a required field cannot be a zero value" },
	{ SCH_DOC(SCH_NOTES("", ",{'name':'p','type':'password','default':'x'}")),
	  "a password field cannot have a default" },
	{ SCH_DOC(SCH_NOTES("'indexes':[{'name':'idx_notes_x','unique':true,'fields':['nope']}],", "")),
	  "collection 'notes' index 'idx_notes_x': field 'nope' does not exist" },
	{ SCH_DOC(SCH_NOTES("'indexes':[{'name':'idx_notes_x','fields':['title','title']}],", "")),
	  "index 'idx_notes_x': field 'title' is listed twice" },
	{ SCH_DOC(SCH_NOTES("'indexes':[{'name':'idx_notes_x','fields':[]}],", "")),
	  "index 'idx_notes_x': 'fields' must be a non-empty array" },
	{ SCH_DOC(SCH_NOTES("'indexes':[{'name':'idx_notes_x','fields':['title'],'uniq':true}],", "")),
	  "index 'idx_notes_x': unknown key 'uniq'" },
	{ SCH_DOC(SCH_NOTES("'indexes':[{'name':'i','fields':['title']},{'name':'i','fields':['title']}],", "")),
	  "collection 'notes': duplicate index 'i'" },
	{ SCH_DOC(SCH_NOTES("'nameField':'nope',", "")),
	  "collection 'notes': nameField 'nope' is not a text field" },
	{ SCH_DOC(SCH_NOTES("'ownerField':'title',", "")),
	  "collection 'notes': ownerField 'title' is not a relation to an auth" },
	{ SCH_DOC(SCH_NOTES("", "") "," SCH_NOTES("", "")),
	  "collection 'notes': declared twice" },
	{ SCH_DOC(SCH_NOTES("", "") ",{'name':'memos','id':'pc_notes','kind':'Memo',"
		  "'fields':[{'name':'x','type':'text'}]," SCH_RULES "}"),
	  "id 'pc_notes' is also the id of collection 'memos'" },
	{ SCH_DOC(SCH_NOTES("", "") ",{'name':'memos','id':'pc_memos','kind':'Note',"
		  "'fields':[{'name':'x','type':'text'}]," SCH_RULES "}"),
	  "'Note' also names collection 'memos'" },
	{ SCH_DOC(SCH_NOTES("", "") ",{'name':'note_s','id':'pc_note_s','kind':'Memo',"
		  "'fields':[{'name':'x','type':'text'}]," SCH_RULES "}"),
	  "also names collection" },
	{ SCH_DOC("{'name':'a','id':'pc_a','kind':'A','fields':[{'name':'b','type':'relation','collection':'b'}]," SCH_RULES "},"
		  "{'name':'b','id':'pc_b','kind':'B','fields':[{'name':'a','type':'relation','collection':'a'}]," SCH_RULES "}"),
	  "collection 'a': its relations form a cycle" },
	{ "{'version':1,'collections':[{'name':'users','id':'_pb_users_auth_','kind':'User','auth':true,"
	  "'fields':[{'name':'email','type':'text'},{'name':'password','type':'password'}]," SCH_RULES "}]}",
	  "an auth collection needs an email field" },
};

Test(schema, bad_documents)
{
	struct schema *s;
	struct err e;
	char *text;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(sch_bad) / sizeof(sch_bad[0]); i++) {
		text = tl_quotes(sch_bad[i].doc);
		cr_assert_not_null(text);
		s = NULL;
		err_clear(&e);
		rc = schema_load(&s, text, strlen(text), &e);
		if (!sch_bad[i].msg) {
			cr_expect_eq(rc, 0, "row %zu: %s", i, e.msg);
			cr_expect_not_null(s, "row %zu", i);
		} else {
			cr_expect_eq(rc, ERR_INVALID, "row %zu loaded", i);
			cr_expect_null(s, "row %zu", i);
			cr_expect_not_null(strstr(e.msg, sch_bad[i].msg),
					   "row %zu: '%s' lacks '%s'", i, e.msg,
					   sch_bad[i].msg);
			cr_expect_null(strchr(e.msg, '\n'), "row %zu", i);
		}
		schema_free(s);
		free(text);
	}
	/* NULL text and a NUL in the middle of the document. */
	s = NULL;
	cr_expect_eq(schema_load(&s, NULL, 0, &e), ERR_INVALID);
	cr_expect_eq(schema_load(&s, "{\"version\"\0:1}", 14, &e), ERR_INVALID);
	cr_expect_null(s);
	schema_free(NULL);
}

/* ---- schema_normalize ---------------------------------------------------- */

#define SCH_ID "abcdefghij01234"

static const struct {
	const char *coll, *in, *base;   /* base NULL: create */
	const char *field;              /* NULL: success */
	const char *msg;                /* failure: message substring */
	const char *expect;             /* success: object of expected values */
} sch_norm[] = {
	/* defaults and zero values on create */
	{ "ai_agents", "{'name':'poco'}", NULL, NULL, NULL,
	  "{'name':'poco','description':'','mode':'all','temperature':0,"
	  "'is_init':false,'prompt':'','model':''}" },
	{ "ai_agents", "{'name':'poco','mode':'primary','temperature':0.1,"
	  "'is_init':true,'prompt':'" SCH_ID "'}", NULL, NULL, NULL,
	  "{'mode':'primary','temperature':0.1,'is_init':true,'prompt':'" SCH_ID "'}" },
	{ "containers", "{'name':'opencode'}", NULL, NULL, NULL,
	  "{'files':[],'running':true,'stop_timeout':10,'health_timeout':60}" },
	{ "containers", "{'name':'o','running':false,'stop_timeout':10.0,"
	  "'files':['opencode.json']}", NULL, NULL, NULL,
	  "{'running':false,'stop_timeout':10,'files':['opencode.json']}" },
	{ "containers", "{'name':'o','stop_timeout':600}", NULL, NULL, NULL,
	  "{'stop_timeout':600}" },
	{ "tool_permissions", "{'tool':'bash','pattern':'ls *','action':'allow'}",
	  NULL, NULL, NULL,
	  "{'agent':'','active':true,'priority':0,'pattern':'ls *'}" },
	{ "mcp_servers", "{'name':'n8n','config':{'K':'v'}}", NULL, NULL, NULL,
	  "{'status':'pending','catalog':'docker-mcp','config':{'K':'v'},"
	  "'config_schema':null,'approved_by':'','approved_at':''}" },
	/* null is the zero value; for json it stays null */
	{ "chats", "{'title':'t','user':'" SCH_ID "','description':null,"
	  "'archived':null,'last_active':null}", NULL, NULL, NULL,
	  "{'description':'','archived':false,'last_active':'',"
	  "'engine_type':'opencode','turn':'user'}" },
	{ "ai_agents", "{'name':'p','temperature':null}", NULL, NULL, NULL,
	  "{'temperature':0}" },
	{ "messages", "{'chat':'" SCH_ID "','role':'user','parts':[{'type':'text',"
	  "'text':'hi'}]}", NULL, NULL, NULL,
	  "{'parts':[{'type':'text','text':'hi'}],'error_payload':null,"
	  "'engine_message_status':''}" },
	/* dates */
	{ "chats", "{'title':'t','user':'" SCH_ID "','last_active':'2024-01-02'}",
	  NULL, NULL, NULL, "{'last_active':'2024-01-02 00:00:00.000Z'}" },
	{ "chats", "{'title':'t','user':'" SCH_ID "','last_active':'2024-01-02 03:04:05.6Z'}",
	  NULL, NULL, NULL, "{'last_active':'2024-01-02 03:04:05.600Z'}" },
	{ "chats", "{'title':'t','user':'" SCH_ID "','last_active':'2024-01-02 03:04:05.123456789Z'}",
	  NULL, NULL, NULL, "{'last_active':'2024-01-02 03:04:05.123Z'}" },
	{ "chats", "{'title':'t','user':'" SCH_ID "','last_active':'2024-01-02T03:04:05Z'}",
	  NULL, NULL, NULL, "{'last_active':'2024-01-02 03:04:05.000Z'}" },
	{ "chats", "{'title':'t','user':'" SCH_ID "','last_active':'2024-01-02T03:04:05+05:30'}",
	  NULL, NULL, NULL, "{'last_active':'2024-01-01 21:34:05.000Z'}" },
	{ "chats", "{'title':'t','user':'" SCH_ID "','last_active':'2024-02-28T23:30:00.250-01:00'}",
	  NULL, NULL, NULL, "{'last_active':'2024-02-29 00:30:00.250Z'}" },
	{ "chats", "{'title':'t','user':'" SCH_ID "','last_active':'2000-02-29 12:00:00.000Z'}",
	  NULL, NULL, NULL, "{'last_active':'2000-02-29 12:00:00.000Z'}" },
	{ "users", "{'email':'a@b.c','password':'secret123'}", NULL, NULL, NULL,
	  "{'email':'a@b.c','password':'secret123','role':'','verified':false}" },
	/* partial updates over a stored record */
	{ "ai_agents", "{'description':'new'}",
	  "{'name':'poco','description':'old','mode':'primary','temperature':0.1,"
	  "'is_init':true,'prompt':'','model':''}", NULL, NULL,
	  "{'name':'poco','description':'new','mode':'primary','temperature':0.1}" },
	{ "ai_agents", "{'mode':'subagent'}", "{'name':'poco','ignored':1}",
	  NULL, NULL, "{'name':'poco','mode':'subagent','is_init':false}" },
	{ "ai_agents", "{'description':'x'}", "{'name':'poco'}", NULL, NULL,
	  "{'mode':'all'}" },   /* a stored record older than the field */
	{ "ai_agents", "{'name':''}", "{'name':'poco'}", "name",
	  "missing required value", NULL },
	{ "ai_agents", "{'mode':'bad'}", "{'name':'poco','mode':'all'}", "mode",
	  "value 'bad' is not one of primary|subagent|all", NULL },

	/* refusals */
	{ "ai_agents", "{'name':'poco','foo':1}", NULL, "foo",
	  "unknown field 'foo'", NULL },
	{ "ai_agents", "{'name':'poco','created':'2024-01-01'}", NULL, "created",
	  "unknown field 'created'", NULL },
	{ "ai_agents", "{'name':'poco','mode':'sandbox_agent'}", NULL, "mode",
	  "value 'sandbox_agent' is not one of primary|subagent|all", NULL },
	{ "ai_agents", "{'name':5}", NULL, "name",
	  "expected a string, got a number", NULL },
	{ "ai_agents", "{'name':'p','temperature':'hot'}", NULL, "temperature",
	  "expected a number, got a string", NULL },
	{ "ai_agents", "{'name':'p','temperature':true}", NULL, "temperature",
	  "expected a number, got a boolean", NULL },
	{ "ai_agents", "{'name':'p','temperature':2.5}", NULL, "temperature",
	  "value 2.5 is more than the maximum 2", NULL },
	{ "ai_agents", "{'name':'p','temperature':-1}", NULL, "temperature",
	  "value -1 is less than the minimum 0", NULL },
	{ "ai_agents", "{'name':'p','is_init':'yes'}", NULL, "is_init",
	  "expected a boolean, got a string", NULL },
	{ "ai_agents", "{'name':'p','is_init':1}", NULL, "is_init",
	  "expected a boolean, got a number", NULL },
	{ "ai_agents", "{'name':['p']}", NULL, "name",
	  "expected a string, got an array", NULL },
	{ "ai_agents", "{}", NULL, "name", "missing required value", NULL },
	{ "ai_agents", "{'name':''}", NULL, "name", "missing required value", NULL },
	{ "ai_agents", "{'name':null}", NULL, "name", "missing required value", NULL },
	{ "ai_agents", "{'name':'p','mode':''}", NULL, "mode",
	  "missing required value", NULL },
	{ "ai_agents", "{'name':'p','mode':null}", NULL, "mode",
	  "missing required value", NULL },
	{ "containers", "{'name':'o','stop_timeout':1.5}", NULL, "stop_timeout",
	  "value 1.5 is not an integer", NULL },
	{ "containers", "{'name':'o','stop_timeout':601}", NULL, "stop_timeout",
	  "value 601 is more than the maximum 600", NULL },
	{ "containers", "{'name':'o','stop_timeout':-1}", NULL, "stop_timeout",
	  "value -1 is less than the minimum 0", NULL },
	{ "sops", "{'name':'s','content':'c','signature':'x','version':0}", NULL,
	  "version", "value 0 is less than the minimum 1", NULL },
	{ "chats", "{'title':'t','user':''}", NULL, "user",
	  "missing required value", NULL },
	{ "chats", "{'title':'t','user':'ABCDEFGHIJ01234'}", NULL, "user",
	  "is not a record id", NULL },
	{ "chats", "{'title':'t','user':'short'}", NULL, "user",
	  "value 'short' is not a record id", NULL },
	{ "chats", "{'title':'t','user':'" SCH_ID "5'}", NULL, "user",
	  "is not a record id", NULL },
	{ "chats", "{'title':'t','user':15}", NULL, "user",
	  "expected a string, got a number", NULL },
	{ "chats", "{'title':'t','engine_type':'vim'}", NULL, "engine_type",
	  "value 'vim' is not one of opencode|claude-code|cursor|custom", NULL },
	{ "users", "{'email':'a@@b','password':'x'}", NULL, "email",
	  "value 'a@@b' is not an email address", NULL },
	{ "users", "{'email':'a@b@c','password':'x'}", NULL, "email",
	  "is not an email address", NULL },
	{ "users", "{'email':'@b','password':'x'}", NULL, "email",
	  "is not an email address", NULL },
	{ "users", "{'email':'a@','password':'x'}", NULL, "email",
	  "is not an email address", NULL },
	{ "users", "{'email':'a b@c','password':'x'}", NULL, "email",
	  "is not an email address", NULL },
	{ "users", "{'email':'ab','password':'x'}", NULL, "email",
	  "is not an email address", NULL },
	{ "users", "{'email':'','password':'x'}", NULL, "email",
	  "missing required value", NULL },
	{ "users", "{'email':'a@b','password':''}", NULL, "password",
	  "missing required value", NULL },
	{ "users", "{'email':'a@b','password':'x','role':'root'}", NULL, "role",
	  "value 'root' is not one of admin|agent|user", NULL },
};

/* Malformed dates, each refused in chats.last_active. */
static const char *const sch_bad_dates[] = {
	"2024-02-30", "2023-02-29", "2024-13-01", "2024-00-10", "2024-01-00",
	"2024-01-32", "2024-01-01T25:00:00Z", "2024-01-01T10:60:00Z",
	"2024-01-01T10:00:60Z", "2024-01-01 10:00:00", "2024-01-01T10:00Z",
	"2024-01-01T10:00:00", "yesterday", "2024-1-1", "2024-01-01T10:00:00+24:00",
	"2024-01-01T10:00:00+05", "2024-01-01T10:00:00.Z",
	"2024-01-01T10:00:00.1234567890Z", " 2024-01-01", "2024-01-01 ",
	"2024-01-01X10:00:00Z", "2024-01-01T10:00:00ZZ", "0000-01-01T00:00:00+01:00",
	"9999-12-31T23:00:00-01:00", "2024/01/01", "+2024-01-01",
};

/* Check out against an expected subset, and that out is complete and in
 * schema order. */
static void sch_check_out(const struct collection *c, json_t *out,
			  const char *expect, size_t row)
{
	json_t *want, *v;
	const char *key;
	void *it;
	size_t i;

	cr_assert(json_is_object(out), "row %zu", row);
	cr_expect_eq(json_object_size(out), c->nfields, "row %zu", row);
	for (i = 0, it = json_object_iter(out); it;
	     i++, it = json_object_iter_next(out, it))
		cr_expect_str_eq(json_object_iter_key(it), c->fields[i].name,
				 "row %zu: field %zu out of order", row, i);
	want = tl_json(expect);
	json_object_foreach(want, key, v) {
		char *got = json_dumps(json_object_get(out, key),
				       JSON_ENCODE_ANY | JSON_COMPACT);
		cr_expect(json_equal(json_object_get(out, key), v),
			  "row %zu: %s = %s", row, key, got ? got : "(absent)");
		free(got);
	}
	json_decref(want);
}

Test(schema, normalize_table)
{
	struct schema *s = tl_schema();
	const struct collection *c;
	json_t *in, *base, *out;
	struct err e;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(sch_norm) / sizeof(sch_norm[0]); i++) {
		c = schema_find(s, sch_norm[i].coll);
		cr_assert_not_null(c, "row %zu", i);
		in = tl_json(sch_norm[i].in);
		base = sch_norm[i].base ? tl_json(sch_norm[i].base) : NULL;
		out = NULL;
		err_clear(&e);
		rc = schema_normalize(c, in, base, &out, &e);
		if (!sch_norm[i].field) {
			cr_expect_eq(rc, 0, "row %zu: %s (%s)", i, e.msg, e.field);
			if (!rc)
				sch_check_out(c, out, sch_norm[i].expect, i);
		} else {
			cr_expect_eq(rc, ERR_INVALID, "row %zu accepted", i);
			cr_expect_null(out, "row %zu", i);
			cr_expect_str_eq(e.field, sch_norm[i].field, "row %zu", i);
			cr_expect_not_null(strstr(e.msg, sch_norm[i].msg),
					   "row %zu: '%s' lacks '%s'", i, e.msg,
					   sch_norm[i].msg);
		}
		json_decref(out);
		json_decref(in);
		json_decref(base);
	}
	schema_free(s);
}

Test(schema, normalize_bad_dates)
{
	struct schema *s = tl_schema();
	const struct collection *c = schema_find(s, "chats");
	json_t *in, *out;
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(sch_bad_dates) / sizeof(sch_bad_dates[0]); i++) {
		in = json_pack("{s:s, s:s, s:s}", "title", "t", "user", SCH_ID,
			       "last_active", sch_bad_dates[i]);
		cr_assert_not_null(in);
		out = NULL;
		err_clear(&e);
		cr_expect_eq(schema_normalize(c, in, NULL, &out, &e), ERR_INVALID,
			     "'%s' accepted", sch_bad_dates[i]);
		cr_expect_str_eq(e.field, "last_active", "'%s'", sch_bad_dates[i]);
		cr_expect_not_null(strstr(e.msg, "is not a date"), "%s", e.msg);
		json_decref(out);
		json_decref(in);
	}
	schema_free(s);
}

Test(schema, normalize_sizes_and_bytes)
{
	struct schema *s = tl_schema();
	const struct collection *models = schema_find(s, "ai_models");
	const struct collection *msgs = schema_find(s, "messages");
	const struct collection *chats = schema_find(s, "chats");
	json_t *in, *base, *out = NULL;
	struct err e = ERR_INIT;
	char *big;
	size_t max = collection_field(models, "name")->max_size;

	/* text: exactly the maximum passes, one byte more does not */
	big = malloc(max + 2);
	cr_assert_not_null(big);
	memset(big, 'a', max + 1);
	big[max] = '\0';
	in = json_pack("{s:s, s:s}", "name", big, "identifier", "x/y");
	cr_expect_eq(schema_normalize(models, in, NULL, &out, &e), 0, "%s", e.msg);
	json_decref(out);
	json_decref(in);
	out = NULL;
	big[max] = 'a';
	big[max + 1] = '\0';
	in = json_pack("{s:s, s:s}", "name", big, "identifier", "x/y");
	cr_expect_eq(schema_normalize(models, in, NULL, &out, &e), ERR_INVALID);
	cr_expect_str_eq(e.field, "name");
	cr_expect_not_null(strstr(e.msg, "more than the maximum 255"), "%s", e.msg);
	cr_expect_null(out);
	json_decref(in);
	free(big);

	/* json: the encoded size counts */
	big = malloc(((size_t)1 << 20) + 1);
	cr_assert_not_null(big);
	memset(big, 'x', (size_t)1 << 20);
	big[(size_t)1 << 20] = '\0';
	in = json_pack("{s:s, s:s, s:{s:s}}", "chat", SCH_ID, "role", "user",
		       "error_payload", "m", big);
	cr_expect_eq(schema_normalize(msgs, in, NULL, &out, &e), ERR_INVALID);
	cr_expect_str_eq(e.field, "error_payload");
	cr_expect_not_null(strstr(e.msg, "encodes to"), "%s", e.msg);
	json_decref(in);
	free(big);

	/* a NUL byte inside text */
	in = json_pack("{s:s#, s:s}", "title", "a\0b", (int)3, "user", SCH_ID);
	cr_assert_not_null(in);
	cr_expect_eq(schema_normalize(chats, in, NULL, &out, &e), ERR_INVALID);
	cr_expect_str_eq(e.field, "title");
	cr_expect_not_null(strstr(e.msg, "NUL"), "%s", e.msg);
	json_decref(in);

	/* non-object input and base */
	in = tl_json("[1]");
	cr_expect_eq(schema_normalize(chats, in, NULL, &out, &e), ERR_INVALID);
	cr_expect_not_null(strstr(e.msg, "must be an object, got an array"));
	cr_expect_eq(schema_normalize(chats, NULL, NULL, &out, &e), ERR_INVALID);
	cr_expect_eq(schema_normalize(chats, json_object_get(in, "x"), in, &out,
				      &e), ERR_INVALID);
	json_decref(in);
	in = json_object();
	base = json_integer(1);
	cr_expect_eq(schema_normalize(chats, in, base, &out, &e), ERR_INVALID);
	cr_expect_not_null(strstr(e.msg, "not an object"), "%s", e.msg);
	json_decref(base);
	json_decref(in);
	schema_free(s);
}

Test(schema, normalize_copies)
{
	struct schema *s = tl_schema();
	const struct collection *c = schema_find(s, "mcp_servers");
	json_t *in, *out = NULL, *out2 = NULL;
	struct err e = ERR_INIT;

	/* The result shares nothing with the input ... */
	in = tl_json("{'name':'n8n','config':{'K':'v'}}");
	cr_assert_eq(schema_normalize(c, in, NULL, &out, &e), 0, "%s", e.msg);
	json_object_set_new(json_object_get(in, "config"), "K", json_string("w"));
	cr_expect_str_eq(json_string_value(json_object_get(
		json_object_get(out, "config"), "K")), "v");
	/* ... nor with the schema's defaults. */
	json_object_set_new(out, "catalog", json_string("changed"));
	json_decref(in);
	in = tl_json("{'name':'x'}");
	cr_assert_eq(schema_normalize(c, in, NULL, &out2, &e), 0, "%s", e.msg);
	cr_expect_str_eq(json_string_value(json_object_get(out2, "catalog")),
			 "docker-mcp");
	/* Normalising normal output changes nothing. */
	json_decref(in);
	in = out2;
	out2 = NULL;
	cr_assert_eq(schema_normalize(c, in, NULL, &out2, &e), 0, "%s", e.msg);
	cr_expect(json_equal(in, out2));
	json_decref(in);
	json_decref(out);
	json_decref(out2);
	schema_free(s);
}
