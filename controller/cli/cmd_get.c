/*
 * cmd_get.c - `pocketctl get KIND [NAME] [-o table|json|yaml|record]` and
 * `pocketctl delete KIND NAME`, on the data directory or through a running
 * server (GET/DELETE /api/v1/manifests/..., see api_apply.h).
 *
 * Both sources are first turned into the same JSON - records (-o table,
 * -o record) or manifest documents (-o yaml, -o json) - and one printer
 * prints them, so the output cannot depend on where the data came from.
 * -o yaml and -o json print the same manifest documents (relations by
 * name) that `apply` takes back unchanged: yaml as a stream of documents,
 * json as one object for KIND NAME and, for a whole kind, as kubectl does,
 * one {"apiVersion": "v1", "kind": "List", "items": [...]} (which apply
 * reads as a list). -o record prints the full records, status included,
 * hidden fields (password hashes, token keys) never. Secret fields are
 * masked (secrets.h) unless --show-secrets is given (through a server: by
 * a superuser); apply takes a mask back as "unchanged". --show-managed
 * adds each manifest's field ownership as metadata.managedFields
 * (apply.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "buf.h"
#include "cli.h"
#include "observed.h"
#include "protocol.h"
#include "yamljson.h"

enum output { OUT_TABLE, OUT_JSON, OUT_YAML, OUT_RECORD };

/* Does output print manifest documents (else records)? */
static bool manifests_out(enum output o)
{
	return o == OUT_JSON || o == OUT_YAML;
}

struct get_walk {
	struct store *store;
	const struct collection *coll;
	enum output output;
	bool managed;          /* --show-managed */
	bool show_secrets;     /* --show-secrets */
	json_t *items;         /* records, or manifests for yaml */
	struct observed *obs;  /* records: their observedGeneration */
	struct err *e;
};

static int visit(const struct record *r, void *arg)
{
	struct get_walk *w = arg;
	json_t *doc;

	if (manifests_out(w->output)) {
		doc = apply_record_manifest(w->store, r, w->e);
		if (doc && w->managed &&
		    apply_managed_fields(w->store, r, doc, w->e)) {
			json_decref(doc);
			doc = NULL;
		}
		if (!doc)
			return w->e->code ? w->e->code : ERR_NOMEM;
	} else {
		doc = record_to_public_json(w->coll, r);
		if (!doc)
			return err_set(w->e, ERR_NOMEM, "out of memory");
		if (observed_set(w->obs, doc, false, w->e)) {
			json_decref(doc);
			return w->e->code;
		}
	}
	if (json_array_append_new(w->items, doc)) /* doc stolen */
		return err_set(w->e, ERR_NOMEM, "out of memory");
	return 0;
}

/* Offline: the records (or manifests) into w->items. */
static int fetch_local(struct get_walk *w, const char *name)
{
	struct store_query q = { NULL, &query_by_name, 0, 0 };
	struct record r;
	int rc;

	record_init(&r);
	/* The floors the server reads too (api_apply.c, observed.h). */
	w->obs = observed_new(w->store);
	rc = w->obs ? 0 : err_set(w->e, ERR_NOMEM, "out of memory");
	if (!rc && !manifests_out(w->output))
		rc = observed_load(w->obs, w->e);
	if (rc)
		goto out;
	if (!name) {
		/* By name, as kubectl lists: the same order every time and
		 * on every source (api_apply.c lists the same way). */
		rc = store_list(w->store, w->coll->name, &q, visit, w, w->e);
		goto out;
	}
	rc = store_get_by_name(w->store, w->coll->name, name, &r, w->e);
	if (!rc)
		rc = visit(&r, w);
out:
	record_release(&r);
	observed_free(w->obs);
	w->obs = NULL;
	return rc;
}

/* Through the server: the same items. */
static int fetch_remote(struct cli_conn *conn, struct get_walk *w,
			const char *name)
{
	struct buf path = BUF_INIT;
	char *esc = NULL;
	json_t *reply = NULL, *items;
	int rc;

	if (name) {
		esc = client_escape(conn->http, name);
		if (!esc)
			return err_set(w->e, ERR_NOMEM, "out of memory");
	}
	rc = buf_printf(&path, "/api/v1/manifests/%s%s%s?view=%s%s%s",
			w->coll->name, esc ? "/" : "", esc ? esc : "",
			manifests_out(w->output) ? "manifest" : "record",
			w->managed ? "&managed=true" : "",
			w->show_secrets ? "&" PROTO_SHOW_SECRETS "=true" : "");
	if (rc) {
		rc = err_set(w->e, rc, "out of memory");
		goto out;
	}
	rc = cli_http(conn, "GET", path.ptr, NULL, NULL, 0, &reply, w->e);
	if (rc)
		goto out;
	items = name ? NULL : json_object_get(reply, "items");
	if (name ? !json_is_object(reply) : !json_is_array(items)) {
		rc = err_set(w->e, ERR_INVALID,
			     "unexpected reply from pocketctl server at %s",
			     client_url(conn->http));
		goto out;
	}
	rc = name ? json_array_append(w->items, reply) :
		    json_array_extend(w->items, items);
	if (rc)
		rc = err_set(w->e, ERR_NOMEM, "out of memory");
out:
	json_decref(reply);
	free(esc);
	buf_release(&path);
	return rc;
}

static json_int_t jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* Kinds with a column of their own, read from the record's status. */
static const struct {
	const char *collection, *header, *status_key;
} status_columns[] = {
	{ "cron_jobs", "NEXT RUN", "nextRun" },   /* rec_cron.c */
	{ "notifications", "STATE", "state" },    /* rec_push.c */
};

static const char *status_column(const struct get_walk *w, json_t *item)
{
	size_t i;

	for (i = 0; i < sizeof(status_columns) / sizeof(status_columns[0]); i++)
		if (!strcmp(w->coll->name, status_columns[i].collection))
			return item ? cli_jstr(json_object_get(item, "status"),
					       status_columns[i].status_key) :
				      status_columns[i].header;
	return NULL;
}

static int print_items(const struct get_walk *w, bool one, struct err *e)
{
	struct buf yaml = BUF_INIT;
	json_t *item;
	size_t i;
	int rc = 0;

	switch (w->output) {
	case OUT_TABLE:
		printf("%-32s %-15s %4s %8s  %s", "NAME", "ID", "GEN",
		       "REVISION", "UPDATED");
		if (status_column(w, NULL))
			printf("%17s  %s", "", status_column(w, NULL));
		printf("\n");
		json_array_foreach(w->items, i, item) {
			printf("%-32s %-15s %4lld %8lld  %s",
			       cli_jstr(item, "name"), cli_jstr(item, "id"),
			       (long long)jint(item, "generation"),
			       (long long)jint(item, "revision"),
			       cli_jstr(item, "updated"));
			if (status_column(w, item))
				printf("  %s", status_column(w, item));
			printf("\n");
		}
		break;
	case OUT_JSON:
	case OUT_RECORD: {
		json_t *v = one ? json_incref(json_array_get(w->items, 0)) :
			    w->output == OUT_RECORD ? json_incref(w->items) :
			    json_pack("{s:s,s:s,s:O}", "apiVersion", "v1",
				      "kind", "List", "items", w->items);
		char *txt = v ? json_dumps(v, JSON_INDENT(2)) : NULL;

		json_decref(v);
		if (!txt) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		printf("%s\n", txt);
		free(txt);
		break;
	}
	case OUT_YAML:
		json_array_foreach(w->items, i, item) {
			rc = yaml_emit(&yaml, item, 1, e);
			if (rc)
				goto out;
		}
		fwrite(yaml.ptr, 1, yaml.len, stdout);
		break;
	}
out:
	buf_release(&yaml);
	return rc;
}

/* get's own options; the index of the first operand, or -1 after the
 * usage message. */
static int get_options(int argc, char **argv, bool *managed)
{
	static const struct option opts[] = {
		{ "show-managed", no_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'm') {
			cli_usage("get", "unknown or incomplete option '%s'",
				  argv[optind - 1]);
			return -1;
		}
		*managed = true;
	}
	return optind;
}

int cmd_get(struct cli *cli, int argc, char **argv)
{
	struct get_walk w;
	struct err e = ERR_INIT;
	const char *name;
	int i, rc = 0;

	memset(&w, 0, sizeof(w));
	argc = cli_take_flag(argc, argv, "--show-secrets", &w.show_secrets);
	i = get_options(argc, argv, &w.managed);
	if (i < 0)
		return CLI_ERROR;
	w.output = !strcmp(cli->output, "json") ? OUT_JSON :
		   !strcmp(cli->output, "yaml") ? OUT_YAML :
		   !strcmp(cli->output, "record") ? OUT_RECORD : OUT_TABLE;
	if (w.managed && !manifests_out(w.output))
		return cli_usage("get", "--show-managed needs -o yaml or -o json");
	if (i >= argc || argc - i > 2)
		return cli_usage("get", "usage: pocketctl get KIND [NAME] [-o table|json|yaml|record] [--show-managed] [--show-secrets]");
	w.coll = schema_find_kind(cli->schema, argv[i]);
	if (!w.coll)
		return cli_usage("get", "unknown kind '%s'", argv[i]);
	name = argc - i == 2 ? argv[i + 1] : NULL;
	w.e = &e;
	w.items = json_array();
	if (!w.items) {
		err_set(&e, ERR_NOMEM, "out of memory");
		rc = cli_fail(&e);
		goto out;
	}
	if (cli_connect(cli, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	w.store = cli->conn.store;
	rc = w.store ? fetch_local(&w, name) : fetch_remote(&cli->conn, &w, name);
	if (!rc && !w.show_secrets)
		rc = cli_mask_local(cli, w.coll, w.items, &e);
	if (!rc)
		rc = print_items(&w, name != NULL, &e);
	if (rc)
		rc = cli_fail(&e);
out:
	json_decref(w.items);
	return rc;
}

static int delete_local(struct cli_conn *conn, const struct collection *coll,
			const char *name, struct err *e)
{
	struct store_txn *t = NULL;
	struct record r;
	int rc;

	record_init(&r);
	rc = store_begin(conn->store, &t, e);
	if (!rc)
		rc = store_txn_get_by_name(t, coll->name, name, &r, e);
	if (!rc)
		rc = store_txn_delete(t, coll->name, r.id, 0, e);
	if (!rc) {
		rc = store_commit(t, e);
		t = NULL;
	}
	store_abort(t);
	record_release(&r);
	return rc;
}

static int delete_remote(struct cli_conn *conn,
			 const struct collection *coll, const char *name,
			 struct err *e)
{
	struct buf path = BUF_INIT;
	char *esc = client_escape(conn->http, name);
	int rc;

	if (!esc)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = buf_printf(&path, "/api/v1/manifests/%s/%s", coll->name, esc);
	if (rc)
		rc = err_set(e, rc, "out of memory");
	else
		rc = cli_http(conn, "DELETE", path.ptr, NULL, NULL, 0, NULL, e);
	free(esc);
	buf_release(&path);
	return rc;
}

int cmd_delete(struct cli *cli, int argc, char **argv)
{
	const struct collection *coll;
	struct err e = ERR_INIT;
	char kind[64];
	int rc;

	if (argc != 3)
		return cli_usage("delete", "usage: pocketctl delete KIND NAME");
	coll = schema_find_kind(cli->schema, argv[1]);
	if (!coll)
		return cli_usage("delete", "unknown kind '%s'", argv[1]);
	rc = cli_connect(cli, &e);
	if (!rc)
		rc = cli->conn.store ?
		     delete_local(&cli->conn, coll, argv[2], &e) :
		     delete_remote(&cli->conn, coll, argv[2], &e);
	if (rc)
		return cli_fail(&e);
	cli_kind_lower(coll, kind, sizeof(kind));
	printf("%s/%s deleted\n", kind, argv[2]);
	return CLI_OK;
}
