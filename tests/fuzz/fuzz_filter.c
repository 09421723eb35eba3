/*
 * fuzz_filter.c - libFuzzer driver for filter_compile() and
 * filter_sort_compile() over the real schema: any input must compile or
 * give a one-line ERR_INVALID, never crash, leak or hit undefined
 * behaviour. Whatever compiles must also become (through the store's
 * query_sql.c) valid SQLite with exactly as many '?' as binds, and run
 * against a small records table.
 *
 * The first input byte picks the collection and the caller (guest, user,
 * superuser); the rest, up to the first NUL, is the expression.
 *
 *   make fuzz
 *   build/fuzz/fuzz_filter tests/fuzz/corpus/filter
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/filter.h"
#include "store/query_sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct schema *schema;   /* loaded once, shared by all runs */
static sqlite3 *db;
static json_t *user;

static void setup(void)
{
	struct err e = ERR_INIT;

	if (schema_load_default(&schema, &e)) {
		fprintf(stderr, "schema: %s\n", e.msg);
		abort();
	}
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(db,
		"CREATE TABLE records(collection TEXT, id TEXT, name TEXT, "
		"data TEXT, labels TEXT, status TEXT, generation INT, "
		"revision INT, created TEXT, updated TEXT);"
		"INSERT INTO records VALUES('users', 'u1', 'u1', "
		"'{\"role\":\"admin\",\"name\":\"A\"}', '{}', '{}', 1, 1, "
		"'2024-01-01 00:00:00.000Z', '2024-01-01 00:00:00.000Z');"
		"INSERT INTO records VALUES('chats', 'c1', 'c1', "
		"'{\"user\":\"u1\",\"title\":\"t_%\"}', '{}', '{}', 1, 2, "
		"'2024-01-02 00:00:00.000Z', '2024-01-02 00:00:00.000Z');",
		NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlite setup failed\n");
		abort();
	}
	user = json_pack("{s:s, s:s, s:b}", "id", "u1", "role", "admin",
			 "verified", 1);
	if (!user)
		abort();
}

static void bind(sqlite3_stmt *st, int i, json_t *v)
{
	if (json_is_string(v))
		sqlite3_bind_text(st, i, json_string_value(v), -1,
				  SQLITE_TRANSIENT);
	else if (json_is_integer(v))
		sqlite3_bind_int64(st, i, json_integer_value(v));
	else if (json_is_real(v))
		sqlite3_bind_double(st, i, json_real_value(v));
	else if (json_is_null(v))
		sqlite3_bind_null(st, i);
	else
		abort();   /* the contract allows nothing else */
}

/* Prepare and run "SELECT id FROM records WHERE collection = ? AND (where)
 * ORDER BY order"; abort unless it is one valid statement with matching
 * binds. */
static void run(const char *coll, const char *where, json_t *args,
		const char *order)
{
	struct buf q = BUF_INIT;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	size_t i;
	int rc;

	if (buf_printf(&q, "SELECT id FROM records WHERE collection = ? AND "
		       "(%s) ORDER BY %s", where, order))
		abort();
	if (sqlite3_prepare_v2(db, q.ptr, -1, &st, &tail) != SQLITE_OK ||
	    *tail) {
		fprintf(stderr, "bad sql: %s\n%s\n", sqlite3_errmsg(db), q.ptr);
		abort();
	}
	if ((size_t)sqlite3_bind_parameter_count(st) !=
	    json_array_size(args) + 1) {
		fprintf(stderr, "bind count mismatch: %s\n", q.ptr);
		abort();
	}
	sqlite3_bind_text(st, 1, coll, -1, SQLITE_STATIC);
	for (i = 0; i < json_array_size(args); i++)
		bind(st, (int)i + 2, json_array_get(args, i));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "step: %s\n%s\n", sqlite3_errmsg(db), q.ptr);
		abort();
	}
	sqlite3_finalize(st);
	buf_release(&q);
}

static void check_error(const struct err *e, int rc, const char *what)
{
	if (rc != ERR_INVALID || !e->msg[0] || strchr(e->msg, '\n') ||
	    strncmp(e->msg, what, strlen(what))) {
		fprintf(stderr, "bad error %d: '%s'\n", rc, e->msg);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct filter_auth auth = { false, NULL, NULL };
	struct query_pred *where = NULL;
	struct query_sort order;
	struct buf sql = BUF_INIT;
	struct err e = ERR_INIT;
	const struct collection *c;
	json_t *args = NULL;
	char *text = NULL;
	int rc;

	if (!schema)
		setup();
	if (size < 1)
		return 0;
	c = &schema->collections[data[0] % schema->ncollections];
	switch ((data[0] / schema->ncollections) % 3) {
	case 1:
		auth.record = user;
		break;
	case 2:
		auth.superuser = true;
		break;
	}
	auth.body = user;
	text = strndup((const char *)data + 1, size - 1);
	args = json_array();
	if (!text || !args)
		abort();

	rc = filter_compile(schema, c, text, &auth, &where, &e);
	if (rc)
		check_error(&e, rc, "filter: ");
	else if (query_sql_where(where, &sql, args, &e))
		abort();   /* a compiled tree always has SQL */
	else
		run(c->name, sql.ptr, args, "records.id");
	query_pred_free(where);

	buf_reset(&sql);
	json_array_clear(args);
	rc = filter_sort_compile(c, text, &auth, &order, &e);
	if (rc)
		check_error(&e, rc, "sort: ");
	else if (query_sql_order(&order, &sql, &e))
		abort();
	else
		run(c->name, "1", args, sql.ptr);

	json_decref(args);
	buf_release(&sql);
	free(text);
	return 0;
}
