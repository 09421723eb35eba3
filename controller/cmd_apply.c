/*
 * cmd_apply.c - `pocketctl apply -f PATH...` and `pocketctl diff -f PATH...`.
 *
 * Both load and check the manifests first, then run the same transaction
 * (apply.c); apply prints one kubectl-style line per record, diff writes the
 * live and desired documents to two temporary trees and runs an external
 * diff over them, as kubectl does (POCKETCTL_EXTERNAL_DIFF, default
 * "diff -u -N").
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apply.h"
#include "buf.h"
#include "cli.h"
#include "manifest.h"
#include "util.h"
#include "yamljson.h"

struct apply_args {
	const char **paths;
	size_t npaths;
	struct apply_opts opts;
	const char *output;  /* "text" or "json" */
};

enum { OPT_DRY_RUN = 1000, OPT_PRUNE, OPT_FORCE, OPT_APPLYSET };

static int parse_args(const char *cmd, int argc, char **argv,
		      struct apply_args *a)
{
	static const struct option longopts[] = {
		{ "filename", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "prune", no_argument, NULL, OPT_PRUNE },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "applyset", required_argument, NULL, OPT_APPLYSET },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->output = "text";
	a->paths = calloc((size_t)argc + 1, sizeof(*a->paths));
	if (!a->paths)
		return cli_usage(cmd, "out of memory");
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			a->paths[a->npaths++] = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "text") && strcmp(optarg, "json"))
				return cli_usage(cmd, "unknown output format '%s' (text or json)", optarg);
			a->output = optarg;
			break;
		case OPT_DRY_RUN:
			a->opts.dry_run = true;
			break;
		case OPT_PRUNE:
			a->opts.prune = true;
			break;
		case OPT_FORCE:
			a->opts.force = true;
			break;
		case OPT_APPLYSET:
			a->opts.applyset = optarg;
			break;
		default:
			return cli_usage(cmd, "unknown or incomplete option '%s'",
					 argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage(cmd, "unexpected argument '%s' (use -f PATH)",
				 argv[optind]);
	if (!a->npaths)
		return cli_usage(cmd, "no manifests given (use -f PATH)");
	if (a->opts.prune && !a->opts.applyset)
		return cli_usage(cmd, "--prune needs --applyset NAME");
	return 0;
}

static void print_items(const struct cli *cli, json_t *res, const char *suffix)
{
	json_t *item;
	size_t i;
	char kind[64];

	json_array_foreach(json_object_get(res, "items"), i, item) {
		const struct collection *c = schema_find(
			cli->schema,
			json_string_value(json_object_get(item, "collection")));

		cli_kind_lower(c, kind, sizeof(kind));
		printf("%s/%s %s%s\n", kind,
		       json_string_value(json_object_get(item, "name")),
		       json_string_value(json_object_get(item, "action")),
		       suffix);
	}
}

int cmd_apply(struct cli *cli, int argc, char **argv)
{
	struct apply_args a;
	struct manifest_set m = { NULL, 0 };
	struct store *s = NULL;
	struct err e = ERR_INIT;
	json_t *res = NULL;
	int rc;

	rc = parse_args("apply", argc, argv, &a);
	if (rc)
		goto out;
	rc = cli_local_only(cli, "apply");
	if (rc)
		goto out;
	if (manifest_load_paths(cli->schema, a.paths, a.npaths, &m, &e) ||
	    cli_open_store(cli, false, &s, &e) ||
	    apply_run(s, &m, &a.opts, &res, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (!strcmp(a.output, "json")) {
		char *txt = json_dumps(res, JSON_INDENT(2));

		printf("%s\n", txt ? txt : "null");
		free(txt);
	} else {
		print_items(cli, res, a.opts.dry_run ? " (dry run)" : "");
	}
out:
	json_decref(res);
	store_close(s);
	manifest_set_release(&m);
	free(a.paths);
	return rc;
}

/* Write doc (or nothing, for null) as YAML to DIR/NAME. */
static int write_side(const char *dir, const char *name, json_t *doc,
		      struct err *e)
{
	struct buf b = BUF_INIT;
	char *path = NULL;
	int rc = 0;

	if (!doc || json_is_null(doc))
		return 0;
	path = path_join(dir, name);
	if (!path)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = yaml_emit(&b, doc, 0, e);
	if (!rc)
		rc = fs_write_atomic(path, b.ptr, b.len, 0600, e);
	buf_release(&b);
	free(path);
	return rc;
}

static int rm_tree(const char *dir)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return 0;
}

/* Run the external diff over the two trees; returns its exit status. */
static int run_diff(const char *live, const char *merged)
{
	const char *tool = getenv("POCKETCTL_EXTERNAL_DIFF");
	struct buf cmd = BUF_INIT;
	int st;

	if (!tool || !*tool)
		tool = "diff -u -N";
	/* The two paths are ours (mkdtemp), safe to hand to the shell. */
	if (buf_printf(&cmd, "%s '%s' '%s'", tool, live, merged))
		return 2;
	fflush(stdout);
	st = system(cmd.ptr);
	buf_release(&cmd);
	if (st == -1 || !WIFEXITED(st))
		return 2;
	return WEXITSTATUS(st);
}

int cmd_diff(struct cli *cli, int argc, char **argv)
{
	struct apply_args a;
	struct manifest_set m = { NULL, 0 };
	struct store *s = NULL;
	struct err e = ERR_INIT;
	json_t *res = NULL, *item;
	char tmpl[] = "/tmp/pocketctl-diff-XXXXXX";
	char *root = NULL, *live = NULL, *merged = NULL;
	size_t i, changed = 0;
	int rc;

	rc = parse_args("diff", argc, argv, &a);
	if (rc)
		goto out;
	rc = cli_local_only(cli, "diff");
	if (rc)
		goto out;
	if (manifest_load_paths(cli->schema, a.paths, a.npaths, &m, &e) ||
	    cli_open_store(cli, false, &s, &e) ||
	    apply_diff(s, &m, &a.opts, &res, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	root = mkdtemp(tmpl);
	live = root ? path_join(root, "LIVE") : NULL;
	merged = root ? path_join(root, "MERGED") : NULL;
	if (!live || !merged || fs_mkdirs(live, &e) || fs_mkdirs(merged, &e)) {
		if (!e.code)
			err_set(&e, ERR_IO, "cannot create a temporary directory");
		rc = cli_fail(&e);
		goto out;
	}
	json_array_foreach(json_object_get(res, "items"), i, item) {
		const char *action = json_string_value(json_object_get(item, "action"));
		const struct collection *c = schema_find(cli->schema,
			json_string_value(json_object_get(item, "collection")));
		char kind[64], name[512];

		if (!strcmp(action, "unchanged"))
			continue;
		changed++;
		cli_kind_lower(c, kind, sizeof(kind));
		snprintf(name, sizeof(name), "%s.%s.yaml", kind,
			 json_string_value(json_object_get(item, "name")));
		if (write_side(live, name, json_object_get(item, "live"), &e) ||
		    write_side(merged, name, json_object_get(item, "desired"),
			       &e)) {
			rc = cli_fail(&e);
			goto out;
		}
	}
	if (!changed) {
		rc = CLI_OK;
		goto out;
	}
	rc = run_diff(live, merged);
	if (rc != 1) {
		fprintf(stderr, "pocketctl diff: the diff tool failed (exit %d)\n", rc);
		rc = CLI_ERROR;
	} else {
		rc = CLI_DIFF;
	}
out:
	if (root)
		rm_tree(root);
	free(live);
	free(merged);
	json_decref(res);
	store_close(s);
	manifest_set_release(&m);
	free(a.paths);
	return rc;
}
