/*
 * cmd_get.c - `pocketctl get KIND[,KIND...]|all [NAME...] [-l SELECTOR]
 * [-o table|wide|name|json|yaml|record|jsonpath=TEMPLATE]`, on the data
 * directory or through a running server (GET /api/v1/manifests/...,
 * see api_apply.h).
 *
 * Both sources are first turned into the same JSON - records (-o table,
 * wide, name, record) or manifest documents (-o yaml, json, jsonpath) -
 * and one printer prints them, so the output cannot depend on where the
 * data came from. A kind is its name, plural, collection or short name
 * (schema "shortNames"); "all" is every kind, and several kinds print as
 * kubectl does: tables one per kind with "kind/name" names, the others
 * as one list. -l filters by label (selector.h), server-side through a
 * server (?labelSelector=). The table's columns past the common ones are
 * the kind's "columns" in the schema (the "wide" ones with -o wide).
 * -o yaml and -o json print the same manifest documents (relations by
 * name) that `apply` takes back unchanged: yaml as a stream of documents,
 * json as one object for KIND NAME and otherwise, as kubectl does, one
 * {"apiVersion": "v1", "kind": "List", "items": [...]} (which apply reads
 * as a list); -o jsonpath runs on that same object (jsonpath.h). -o
 * record prints the full records, status included, hidden fields never.
 * Secret fields are masked (secrets.h) unless --show-secrets is given
 * (through a server: by a superuser); apply takes a mask back as
 * "unchanged". --show-managed adds each manifest's field ownership as
 * metadata.managedFields (apply.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "buf.h"
#include "cli.h"
#include "jsonpath.h"
#include "observed.h"
#include "protocol.h"
#include "selector.h"
#include "yamljson.h"

enum output {
	OUT_TABLE, OUT_WIDE, OUT_NAME, OUT_JSON, OUT_YAML, OUT_RECORD,
	OUT_JSONPATH
};

/* Does output print manifest documents (else records)? */
static bool manifests_out(enum output o)
{
	return o == OUT_JSON || o == OUT_YAML || o == OUT_JSONPATH;
}

struct get_opts {
	enum output output;
	bool managed;                /* --show-managed */
	bool show_secrets;           /* --show-secrets */
	const char *selector_text;   /* -l, or NULL */
	struct selector *selector;   /* parsed -l, or NULL */
	struct jsonpath *jsonpath;   /* -o jsonpath=..., or NULL */
};

struct get_walk {
	struct store *store;
	const struct collection *coll;
	const struct get_opts *o;
	json_t *items;               /* records, or manifests */
	struct observed *obs;        /* records: their observedGeneration */
	struct err *e;
};

static int visit(const struct record *r, void *arg)
{
	struct get_walk *w = arg;
	json_t *doc;

	if (!selector_match(w->o->selector, r->labels))
		return 0;
	if (manifests_out(w->o->output)) {
		doc = apply_record_manifest(w->store, r, w->e);
		if (doc && w->o->managed &&
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
	if (!rc && !manifests_out(w->o->output))
		rc = observed_load(w->obs, w->e);
	if (rc)
		goto out;
	if (!name) {
		/* By name, as kubectl lists: the same order every time and
		 * on every source (api_apply.c lists the same way). */
		rc = store_list(w->store, w->coll->name, &q, visit, w, w->e);
		goto out;
	}
	rc = store_get_named(w->store, NULL, w->coll->name, name, &r, w->e);
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
	char *esc = NULL, *sel = NULL;
	json_t *reply = NULL, *items, *labels;
	int rc;

	esc = name ? client_escape(conn->http, name) : NULL;
	sel = w->o->selector_text ?
	      client_escape(conn->http, w->o->selector_text) : NULL;
	if ((name && !esc) || (w->o->selector_text && !sel)) {
		rc = err_set(w->e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = buf_printf(&path, "/api/v1/manifests/%s%s%s?view=%s%s%s%s%s",
			w->coll->name, esc ? "/" : "", esc ? esc : "",
			manifests_out(w->o->output) ? "manifest" : "record",
			w->o->managed ? "&managed=true" : "",
			w->o->show_secrets ? "&" PROTO_SHOW_SECRETS "=true" : "",
			sel && !name ? "&labelSelector=" : "",
			sel && !name ? sel : "");
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
	if (name) {
		/* One record by name: the selector applies here. */
		labels = json_object_get(reply, "labels");
		if (!labels)
			labels = json_object_get(json_object_get(reply,
							 "metadata"), "labels");
		rc = selector_match(w->o->selector, labels) ?
		     json_array_append(w->items, reply) : 0;
	} else {
		rc = json_array_extend(w->items, items);
	}
	if (rc)
		rc = err_set(w->e, ERR_NOMEM, "out of memory");
out:
	json_decref(reply);
	free(esc);
	free(sel);
	buf_release(&path);
	return rc;
}

static json_int_t jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/*
 * The value of a schema column (schema.h struct column) in a record
 * item: "spec.F" is data.F, "status.A.B" walks status; a step into an
 * array picks the element whose "type" is the step (Kubernetes
 * conditions: status.conditions.Ready.status). Into out as text,
 * "<none>" when missing or empty.
 */
static void column_value(const struct column *col, json_t *item, char *out,
			 size_t n)
{
	const char *p = col->path, *dot;
	json_t *v, *el;
	size_t i, len;
	char key[64];
	char *txt;

	v = !strncmp(p, "spec.", 5) ? json_object_get(item, "data") :
	    json_object_get(item, "status");
	p = strchr(p, '.') + 1;
	while (v && *p) {
		dot = strchr(p, '.');
		len = dot ? (size_t)(dot - p) : strlen(p);
		snprintf(key, sizeof(key), "%.*s", (int)len, p);
		if (json_is_array(v)) {
			json_t *found = NULL;

			json_array_foreach(v, i, el)
				if (!found && !strcmp(cli_jstr(el, "type"), key))
					found = el;
			v = found;
		} else {
			v = json_object_get(v, key);
		}
		p += len + (dot != NULL);
	}
	if (!v || json_is_null(v) ||
	    (json_is_string(v) && !*json_string_value(v))) {
		snprintf(out, n, "<none>");
		return;
	}
	if (json_is_string(v)) {
		snprintf(out, n, "%s", json_string_value(v));
		return;
	}
	txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(out, n, "%s", txt ? txt : "?");
	free(txt);
}

#define CELL_MAX 128
#define COMMON_COLUMNS 5   /* NAME ID GEN REVISION UPDATED */

/* The cells of one row (i < 0: the header) into cells[] (CELL_MAX each);
 * returns how many. */
static size_t row_cells(const struct collection *c, bool wide,
			const char *kind_prefix, json_t *item,
			char cells[][CELL_MAX])
{
	size_t k, n = 0;

	if (!item) {
		static const char *const h[COMMON_COLUMNS] = {
			"NAME", "ID", "GEN", "REVISION", "UPDATED"
		};
		for (k = 0; k < COMMON_COLUMNS; k++)
			snprintf(cells[n++], CELL_MAX, "%s", h[k]);
	} else {
		snprintf(cells[n++], CELL_MAX, "%s%s", kind_prefix,
			 cli_jstr(item, "name"));
		snprintf(cells[n++], CELL_MAX, "%s", cli_jstr(item, "id"));
		snprintf(cells[n++], CELL_MAX, "%lld",
			 (long long)jint(item, "generation"));
		snprintf(cells[n++], CELL_MAX, "%lld",
			 (long long)jint(item, "revision"));
		snprintf(cells[n++], CELL_MAX, "%s", cli_jstr(item, "updated"));
	}
	for (k = 0; k < c->ncolumns; k++) {
		if (c->columns[k].wide && !wide)
			continue;
		if (item)
			column_value(&c->columns[k], item, cells[n], CELL_MAX);
		else
			snprintf(cells[n], CELL_MAX, "%s", c->columns[k].header);
		n++;
	}
	return n;
}

/* One kind's table, columns as wide as their widest cell, three spaces
 * apart (kubectl's tabwriter). kind_prefix "toolpermission/" or "".
 * Returns 0, or ERR_NOMEM with nothing printed. */
static int print_table(const struct collection *c, json_t *items, bool wide,
		       const char *kind_prefix)
{
	size_t ncols = COMMON_COLUMNS + c->ncolumns, n, i, k;
	char (*cells)[CELL_MAX] = calloc(ncols, CELL_MAX);
	size_t *width = calloc(ncols, sizeof(size_t));
	json_t *item;

	if (!cells || !width) {
		free(cells);
		free(width);
		return ERR_NOMEM;
	}
	for (i = 0; i <= json_array_size(items); i++) {
		item = i ? json_array_get(items, i - 1) : NULL;
		n = row_cells(c, wide, kind_prefix, item, cells);
		for (k = 0; k < n; k++)
			if (strlen(cells[k]) > width[k])
				width[k] = strlen(cells[k]);
	}
	for (i = 0; i <= json_array_size(items); i++) {
		item = i ? json_array_get(items, i - 1) : NULL;
		n = row_cells(c, wide, kind_prefix, item, cells);
		for (k = 0; k < n; k++)
			if (k + 1 < n)
				printf("%-*s   ", (int)width[k], cells[k]);
			else
				printf("%s\n", cells[k]);
	}
	free(cells);
	free(width);
	return 0;
}

/* What one kind of the command line found. */
struct group {
	const struct collection *coll;
	json_t *items;               /* owned */
};

static int print_groups(const struct get_opts *o, struct group *g, size_t ng,
			bool one, struct err *e)
{
	struct buf out = BUF_INIT;
	char kind[80];
	json_t *all = NULL, *item, *v = NULL;
	size_t i, j, printed = 0;
	char *txt = NULL;
	int rc = 0;

	if (o->output == OUT_TABLE || o->output == OUT_WIDE) {
		for (i = 0; i < ng; i++) {
			/* Several kinds: those with records, kubectl-style. */
			if (ng > 1 && !json_array_size(g[i].items))
				continue;
			cli_kind_lower(g[i].coll, kind, sizeof(kind) - 1);
			strcat(kind, "/");
			if (printed++)
				printf("\n");
			if (print_table(g[i].coll, g[i].items,
					o->output == OUT_WIDE, ng > 1 ? kind : ""))
				return err_set(e, ERR_NOMEM, "out of memory");
		}
		if (ng > 1 && !printed)
			fprintf(stderr, "No resources found\n");
		return 0;
	}
	all = json_array();
	for (i = 0; all && i < ng; i++)
		if (json_array_extend(all, g[i].items))
			break;
	if (!all || i < ng) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	one = one && json_array_size(all) == 1;
	switch (o->output) {
	case OUT_NAME:
		for (i = 0; i < ng; i++) {
			cli_kind_lower(g[i].coll, kind, sizeof(kind));
			json_array_foreach(g[i].items, j, item)
				printf("%s/%s\n", kind, cli_jstr(item, "name"));
		}
		break;
	case OUT_JSON:
	case OUT_RECORD:
	case OUT_JSONPATH:
		v = one ? json_incref(json_array_get(all, 0)) :
		    o->output == OUT_RECORD ? json_incref(all) :
		    json_pack("{s:s,s:s,s:O}", "apiVersion", "v1",
			      "kind", "List", "items", all);
		if (!v) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		if (o->output == OUT_JSONPATH) {
			rc = jsonpath_execute(o->jsonpath, v, &out, e);
			if (rc)
				goto out;
			/* kubectl prints the template as is, no newline. */
			fwrite(out.ptr, 1, out.len, stdout);
			break;
		}
		txt = json_dumps(v, JSON_INDENT(2));
		if (!txt) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		printf("%s\n", txt);
		break;
	case OUT_YAML:
		json_array_foreach(all, i, item) {
			rc = yaml_emit(&out, item, 1, e);
			if (rc)
				goto out;
		}
		fwrite(out.ptr, 1, out.len, stdout);
		break;
	case OUT_TABLE:
	case OUT_WIDE:
		break;
	}
out:
	free(txt);
	json_decref(v);
	json_decref(all);
	buf_release(&out);
	return rc;
}

#define GET_USAGE "usage: pocketctl get KIND[,KIND...]|all [NAME...] [-l SELECTOR] " \
	"[-o table|wide|name|json|yaml|record|jsonpath=TEMPLATE] [--show-managed] [--show-secrets]"

/* get's own options; the index of the first operand, or -1 after the
 * usage message. */
static int get_options(int argc, char **argv, struct get_opts *o)
{
	static const struct option opts[] = {
		{ "show-managed", no_argument, NULL, 'm' },
		{ "selector", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "l:", opts, NULL)) != -1) {
		if (c == 'm') {
			o->managed = true;
		} else if (c == 'l') {
			o->selector_text = optarg;
		} else {
			cli_usage("get", "unknown or incomplete option '%s'",
				  argv[optind - 1]);
			return -1;
		}
	}
	return optind;
}

/* The kinds of "tp,mcp" or "all" into g[] (at most max); how many, or -1
 * after the usage message naming the unknown one. */
static int parse_kinds(const struct schema *s, const char *arg,
		       struct group *g, size_t max)
{
	const char *p = arg;
	char one[128];
	size_t n = 0, len, i;

	if (!strcmp(arg, "all")) {
		for (i = 0; i < s->ncollections && n < max; i++)
			g[n++].coll = &s->collections[i];
		return (int)n;
	}
	for (;;) {
		len = strcspn(p, ",");
		snprintf(one, sizeof(one), "%.*s", (int)len, p);
		if (n >= max) {
			cli_usage("get", "too many kinds in '%s'", arg);
			return -1;
		}
		g[n].coll = schema_find_kind_or_short(s, one);
		if (!g[n].coll) {
			cli_usage("get", "unknown kind '%s'%s", one,
				  " (pocketctl api-resources lists them)");
			return -1;
		}
		for (i = 0; i < n; i++)
			if (g[i].coll == g[n].coll)
				break;
		n += i == n;     /* "tp,toolpermission": once */
		if (!p[len])
			break;
		p += len + 1;
	}
	return (int)n;
}

/* -o from main() (and the jsonpath template) into o; 0 or -1 after the
 * usage message. */
static int parse_output(const struct cli *cli, struct get_opts *o,
			struct err *e)
{
	static const struct { const char *name; enum output out; } outs[] = {
		{ "table", OUT_TABLE }, { "wide", OUT_WIDE },
		{ "name", OUT_NAME }, { "json", OUT_JSON },
		{ "yaml", OUT_YAML }, { "record", OUT_RECORD },
		{ "jsonpath", OUT_JSONPATH },
	};
	size_t i;

	for (i = 0; i < sizeof(outs) / sizeof(outs[0]); i++)
		if (!strcmp(cli->output, outs[i].name))
			o->output = outs[i].out;
	if (o->output != OUT_JSONPATH)
		return 0;
	if (!cli->output_arg || !*cli->output_arg) {
		cli_usage("get", "-o jsonpath needs a template: -o jsonpath='{.items[*].metadata.name}'");
		return -1;
	}
	if (jsonpath_compile(cli->output_arg, &o->jsonpath, e)) {
		cli_usage("get", "%s", e->msg);
		return -1;
	}
	return 0;
}

int cmd_get(struct cli *cli, int argc, char **argv)
{
	struct group g[64];
	struct get_opts o;
	struct get_walk w;
	struct err e = ERR_INIT;
	int i, j, ng = 0, k, rc = 0;

	memset(&o, 0, sizeof(o));
	memset(g, 0, sizeof(g));
	argc = cli_take_flag(argc, argv, "--show-secrets", &o.show_secrets);
	i = get_options(argc, argv, &o);
	if (i < 0 || parse_output(cli, &o, &e))
		return CLI_ERROR;
	if (o.managed && !manifests_out(o.output)) {
		rc = cli_usage("get", "--show-managed needs -o yaml or -o json");
		goto out;
	}
	if (i >= argc) {
		rc = cli_usage("get", GET_USAGE);
		goto out;
	}
	if (o.selector_text && selector_parse(o.selector_text, &o.selector, &e)) {
		rc = cli_usage("get", "%s", e.msg);
		goto out;
	}
	ng = parse_kinds(cli->schema, argv[i], g, sizeof(g) / sizeof(g[0]));
	if (ng < 0) {
		rc = CLI_ERROR;
		goto out;
	}
	if (ng > 1 && argc - i > 1) {
		rc = cli_usage("get", "a NAME needs one kind, not '%s'", argv[i]);
		goto out;
	}
	if (cli_connect(cli, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	for (k = 0; k < ng && !rc; k++) {
		memset(&w, 0, sizeof(w));
		w.store = cli->conn.store;
		w.coll = g[k].coll;
		w.o = &o;
		w.e = &e;
		w.items = g[k].items = json_array();
		if (!w.items) {
			rc = err_set(&e, ERR_NOMEM, "out of memory");
			break;
		}
		for (j = i + 1; j <= argc && !rc; j++) {
			const char *name = j < argc ? argv[j] : NULL;

			if (!name && argc - i > 1)
				break;
			rc = w.store ? fetch_local(&w, name) :
			     fetch_remote(&cli->conn, &w, name);
		}
		if (!rc && !o.show_secrets)
			rc = cli_mask_local(cli, w.coll, w.items, &e);
	}
	if (!rc)
		rc = print_groups(&o, g, (size_t)ng, argc - i == 2, &e);
	if (rc)
		rc = cli_fail(&e);
out:
	for (k = 0; k < ng; k++)
		json_decref(g[k].items);
	selector_free(o.selector);
	jsonpath_free(o.jsonpath);
	return rc;
}
