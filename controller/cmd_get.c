/*
 * cmd_get.c - `pocketctl get KIND [NAME] [-o table|json|yaml]` and
 * `pocketctl delete KIND NAME`.
 *
 * -o yaml prints manifest documents (relations by name) that `apply` takes
 * back unchanged; -o json prints the full records, status included.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "buf.h"
#include "cli.h"
#include "yamljson.h"

struct get_walk {
	struct store *store;
	const char *output;
	json_t *list;          /* json output */
	struct buf yaml;       /* yaml output */
	size_t n;
	struct err *e;
};

static int print_row(const struct record *r)
{
	printf("%-32s %-15s %4lld %8lld  %s\n", r->name, r->id,
	       (long long)r->generation, (long long)r->revision, r->updated);
	return 0;
}

static int visit(const struct record *r, void *arg)
{
	struct get_walk *w = arg;
	json_t *doc;
	int rc;

	w->n++;
	if (!strcmp(w->output, "table"))
		return print_row(r);
	if (!strcmp(w->output, "json"))
		return json_array_append_new(w->list, record_to_json(r)) ?
			       ERR_NOMEM : 0;
	doc = apply_record_manifest(w->store, r, w->e);
	if (!doc)
		return w->e->code;
	rc = yaml_emit(&w->yaml, doc, 1, w->e);
	json_decref(doc);
	return rc;
}

int cmd_get(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const struct collection *coll;
	struct get_walk w;
	struct store *s = NULL;
	struct err e = ERR_INIT;
	struct record r;
	const char *output = "table";
	int c, rc = 0;

	memset(&w, 0, sizeof(w));
	buf_init(&w.yaml, 0);
	record_init(&r);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
		if (c != 'o')
			return cli_usage("get", "unknown or incomplete option '%s'",
					 argv[optind - 1]);
		output = optarg;
	}
	if (strcmp(output, "table") && strcmp(output, "json") &&
	    strcmp(output, "yaml"))
		return cli_usage("get", "unknown output format '%s' (table, json or yaml)",
				 output);
	if (optind >= argc || argc - optind > 2)
		return cli_usage("get", "usage: pocketctl get KIND [NAME] [-o table|json|yaml]");
	rc = cli_local_only(cli, "get");
	if (rc)
		return rc;
	coll = schema_find_kind(cli->schema, argv[optind]);
	if (!coll)
		return cli_usage("get", "unknown kind '%s'", argv[optind]);
	if (cli_open_store(cli, true, &s, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	w.store = s;
	w.output = output;
	w.e = &e;
	w.list = json_array();
	if (!strcmp(output, "table"))
		printf("%-32s %-15s %4s %8s  %s\n", "NAME", "ID", "GEN",
		       "REVISION", "UPDATED");
	if (argc - optind == 2) {
		if (store_get_by_name(s, coll->name, argv[optind + 1], &r, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		rc = visit(&r, &w);
	} else {
		rc = store_list(s, coll->name, NULL, visit, &w, &e);
	}
	if (rc) {
		rc = cli_fail(&e);
		goto out;
	}
	if (!strcmp(output, "json")) {
		json_t *one = argc - optind == 2 ? json_array_get(w.list, 0) :
						   w.list;
		char *txt = json_dumps(one, JSON_INDENT(2));

		printf("%s\n", txt ? txt : "null");
		free(txt);
	} else if (!strcmp(output, "yaml")) {
		fwrite(w.yaml.ptr, 1, w.yaml.len, stdout);
	}
out:
	json_decref(w.list);
	buf_release(&w.yaml);
	record_release(&r);
	store_close(s);
	return rc;
}

int cmd_delete(struct cli *cli, int argc, char **argv)
{
	const struct collection *coll;
	struct store *s = NULL;
	struct store_txn *t = NULL;
	struct err e = ERR_INIT;
	struct record r;
	char kind[64];
	int rc;

	record_init(&r);
	if (argc != 3)
		return cli_usage("delete", "usage: pocketctl delete KIND NAME");
	rc = cli_local_only(cli, "delete");
	if (rc)
		return rc;
	coll = schema_find_kind(cli->schema, argv[1]);
	if (!coll)
		return cli_usage("delete", "unknown kind '%s'", argv[1]);
	if (cli_open_store(cli, false, &s, &e) || store_begin(s, &t, &e) ||
	    store_txn_get_by_name(t, coll->name, argv[2], &r, &e) ||
	    store_txn_delete(t, coll->name, r.id, 0, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	rc = store_commit(t, &e);
	t = NULL;
	if (rc) {
		rc = cli_fail(&e);
		goto out;
	}
	cli_kind_lower(coll, kind, sizeof(kind));
	printf("%s/%s deleted\n", kind, argv[2]);
out:
	store_abort(t);
	record_release(&r);
	store_close(s);
	return rc;
}
