/*
 * cmd_delete.c - `pocketctl delete KIND NAME...`, `delete KIND -l
 * SELECTOR` and `delete -f PATH...` (every document of the manifests),
 * on the data directory or through a running server (DELETE
 * /api/v1/manifests/KIND/NAME, see api_apply.h).
 *
 * The targets are resolved first - each named record must exist, unless
 * --ignore-not-found - and only then deleted, so a typo in the third name
 * deletes nothing. Offline, the deletes are one store transaction (all or
 * none); through a server they are one request each, after every target
 * was found.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "manifest.h"
#include "selector.h"

#define DELETE_USAGE "usage: pocketctl delete KIND NAME... | KIND -l SELECTOR | -f PATH... [--ignore-not-found]"

/* One record to delete. */
struct target {
	const struct collection *coll;   /* borrowed from the schema */
	char *name;                      /* owned */
};

struct targets {
	struct target *t;
	size_t n;
	struct err *e;
};

static void targets_release(struct targets *ts)
{
	size_t i;

	for (i = 0; i < ts->n; i++)
		free(ts->t[i].name);
	free(ts->t);
}

static int add_target(struct targets *ts, const struct collection *c,
		      const char *name)
{
	struct target *nt = realloc(ts->t, (ts->n + 1) * sizeof(*nt));

	if (!nt)
		return err_set(ts->e, ERR_NOMEM, "out of memory");
	ts->t = nt;
	nt[ts->n].coll = c;
	nt[ts->n].name = strdup(name);
	if (!nt[ts->n].name)
		return err_set(ts->e, ERR_NOMEM, "out of memory");
	ts->n++;
	return 0;
}

/* Offline -l: the names whose labels match, in name order. */
struct sel_walk {
	struct targets *ts;
	const struct collection *coll;
	const struct selector *sel;
};

static int sel_visit(const struct record *r, void *arg)
{
	struct sel_walk *w = arg;

	if (!selector_match(w->sel, r->labels))
		return 0;
	return add_target(w->ts, w->coll, r->name);
}

static int select_local(struct cli_conn *conn, const struct collection *c,
			const struct selector *sel, struct targets *ts)
{
	struct store_query q = { NULL, &query_by_name, 0, 0 };
	struct sel_walk w = { ts, c, sel };

	return store_list(conn->store, c->name, &q, sel_visit, &w, ts->e);
}

/* Through a server -l: the same names, the selector evaluated there. */
static int select_remote(struct cli_conn *conn, const struct collection *c,
			 const char *sel_text, struct targets *ts)
{
	struct buf path = BUF_INIT;
	char *sel = client_escape(conn->http, sel_text);
	json_t *reply = NULL, *items, *item;
	size_t i;
	int rc;

	if (!sel)
		return err_set(ts->e, ERR_NOMEM, "out of memory");
	rc = buf_printf(&path, "/api/v1/manifests/%s?view=record&labelSelector=%s",
			c->name, sel);
	if (rc)
		rc = err_set(ts->e, rc, "out of memory");
	else
		rc = cli_http(conn, "GET", path.ptr, NULL, NULL, 0, &reply,
			      ts->e);
	items = json_object_get(reply, "items");
	if (!rc && !json_is_array(items))
		rc = err_set(ts->e, ERR_INVALID,
			     "unexpected reply from pocketctl server at %s",
			     client_url(conn->http));
	json_array_foreach(items, i, item)
		if (!rc)
			rc = add_target(ts, c, cli_jstr(item, "name"));
	json_decref(reply);
	free(sel);
	buf_release(&path);
	return rc;
}

/* Does the target exist? 0 yes, ERR_NOT_FOUND (e set) no, else an
 * error. */
static int find_target(struct cli_conn *conn, const struct target *t,
		       struct err *e)
{
	struct buf path = BUF_INIT;
	struct record r;
	char *esc;
	int rc;

	if (conn->store) {
		record_init(&r);
		rc = store_get_named(conn->store, NULL, t->coll->name, t->name,
				     &r, e);
		record_release(&r);
		return rc;
	}
	esc = client_escape(conn->http, t->name);
	if (!esc)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = buf_printf(&path, "/api/v1/manifests/%s/%s?view=record",
			t->coll->name, esc);
	if (rc)
		rc = err_set(e, rc, "out of memory");
	else
		rc = cli_http(conn, "GET", path.ptr, NULL, NULL, 0, NULL, e);
	free(esc);
	buf_release(&path);
	return rc;
}

static int delete_local(struct cli_conn *conn, const struct targets *ts,
			struct err *e)
{
	struct store_txn *t = NULL;
	struct record r;
	size_t i;
	int rc;

	rc = store_begin(conn->store, &t, e);
	for (i = 0; !rc && i < ts->n; i++) {
		if (!ts->t[i].name)
			continue;
		record_init(&r);
		rc = store_get_named(NULL, t, ts->t[i].coll->name,
				     ts->t[i].name, &r, e);
		if (!rc)
			rc = store_txn_delete(t, ts->t[i].coll->name, r.id, 0, e);
		record_release(&r);
	}
	if (!rc) {
		rc = store_commit(t, e);
		t = NULL;
	}
	store_abort(t);
	return rc;
}

static int delete_remote(struct cli_conn *conn, const struct target *t,
			 struct err *e)
{
	struct buf path = BUF_INIT;
	char *esc = client_escape(conn->http, t->name);
	int rc;

	if (!esc)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = buf_printf(&path, "/api/v1/manifests/%s/%s", t->coll->name, esc);
	if (rc)
		rc = err_set(e, rc, "out of memory");
	else
		rc = cli_http(conn, "DELETE", path.ptr, NULL, NULL, 0, NULL, e);
	free(esc);
	buf_release(&path);
	return rc;
}

/* The targets of -f PATH...: every document, in the files' order. */
static int file_targets(const struct cli *cli, const char *const *paths,
			size_t n, struct targets *ts)
{
	struct manifest_set m = { NULL, 0, 0 };
	size_t i;
	int rc;

	rc = manifest_load_paths(cli->schema, paths, n, &m, ts->e);
	for (i = 0; !rc && i < m.n; i++)
		rc = add_target(ts, m.docs[i].coll, m.docs[i].name);
	manifest_set_release(&m);
	return rc;
}

struct delete_opts {
	const char **files;          /* -f, borrowed from argv */
	size_t nfiles;
	const char *selector;        /* -l */
	bool ignore_not_found;
};

/* delete's options; the index of the first operand, or -1 after the usage
 * message. */
static int delete_options(int argc, char **argv, struct delete_opts *o)
{
	static const struct option opts[] = {
		{ "filename", required_argument, NULL, 'f' },
		{ "selector", required_argument, NULL, 'l' },
		{ "ignore-not-found", no_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:l:", opts, NULL)) != -1) {
		if (c == 'f') {
			o->files[o->nfiles++] = optarg;
		} else if (c == 'l') {
			o->selector = optarg;
		} else if (c == 'i') {
			o->ignore_not_found = true;
		} else {
			cli_usage("delete", "unknown or incomplete option '%s'",
				  argv[optind - 1]);
			return -1;
		}
	}
	return optind;
}

int cmd_delete(struct cli *cli, int argc, char **argv)
{
	struct delete_opts o;
	struct selector *sel = NULL;
	struct err e = ERR_INIT;
	struct targets ts = { NULL, 0, &e };
	const struct collection *coll = NULL;
	char kind[64];
	size_t i, printed = 0;
	int first, j, rc = 0;

	memset(&o, 0, sizeof(o));
	o.files = calloc((size_t)argc + 1, sizeof(char *));
	if (!o.files)
		return cli_fail(&e);
	first = delete_options(argc, argv, &o);
	if (first < 0) {
		rc = CLI_ERROR;
		goto out;
	}
	if (o.nfiles ? first != argc || o.selector :
	    first >= argc || (o.selector ? argc - first != 1 : argc - first < 2)) {
		rc = cli_usage("delete", DELETE_USAGE);
		goto out;
	}
	if (o.selector && selector_parse(o.selector, &sel, &e)) {
		rc = cli_usage("delete", "%s", e.msg);
		goto out;
	}
	if (!o.nfiles) {
		coll = schema_find_kind_or_short(cli->schema, argv[first]);
		if (!coll) {
			rc = cli_usage("delete", "unknown kind '%s'", argv[first]);
			goto out;
		}
	}
	/* -f is read before connecting: a bad file touches nothing. */
	rc = o.nfiles ? file_targets(cli, o.files, o.nfiles, &ts) : 0;
	if (!rc)
		rc = cli_connect(cli, &e);
	if (!rc && o.selector)
		rc = cli->conn.store ? select_local(&cli->conn, coll, sel, &ts) :
		     select_remote(&cli->conn, coll, o.selector, &ts);
	for (j = first + 1; !rc && !o.selector && !o.nfiles && j < argc; j++)
		rc = add_target(&ts, coll, argv[j]);
	/* Every target found first; --ignore-not-found drops the missing
	 * (their name set to NULL). */
	for (i = 0; !rc && i < ts.n; i++) {
		rc = find_target(&cli->conn, &ts.t[i], &e);
		if (rc == ERR_NOT_FOUND && o.ignore_not_found) {
			free(ts.t[i].name);
			ts.t[i].name = NULL;
			rc = 0;
		}
	}
	if (!rc && cli->conn.store)
		rc = delete_local(&cli->conn, &ts, &e);
	for (i = 0; !rc && !cli->conn.store && i < ts.n; i++)
		if (ts.t[i].name)
			rc = delete_remote(&cli->conn, &ts.t[i], &e);
	if (rc) {
		rc = cli_fail(&e);
		goto out;
	}
	for (i = 0; i < ts.n; i++) {
		if (!ts.t[i].name)
			continue;
		cli_kind_lower(ts.t[i].coll, kind, sizeof(kind));
		printf("%s/%s deleted\n", kind, ts.t[i].name);
		printed++;
	}
	if (!printed)
		fprintf(stderr, "No resources found\n");
out:
	targets_release(&ts);
	selector_free(sel);
	free(o.files);
	return rc;
}
