/*
 * cmd_apply.c - `pocketctl apply -f PATH...` and `pocketctl diff -f PATH...`.
 *
 * Both load and check the manifests locally first (same FILE:LINE:COL
 * errors either way), then run the same transaction (apply.c): on the data
 * directory when working offline, or on the server through POST
 * /api/v1/apply or /api/v1/diff, sending each file's text under its own
 * name (the files form of api_apply.h) so that the server's errors still
 * name the user's files. The result JSON is the same in both cases, and so
 * is the output: apply prints one kubectl-style line per record, diff
 * writes the live and desired documents to two temporary trees and runs an
 * external diff over them, as kubectl does (POCKETCTL_EXTERNAL_DIFF,
 * default "diff -u -N").
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/api_apply.h"
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

/*
 * The files form of the apply body: each distinct file of m, in load
 * order, with its text as read now. Caller frees *out.
 */
static int files_body(const struct manifest_set *m, char **out,
		      struct err *e)
{
	json_t *root = NULL, *files, *seen = NULL;
	struct buf b;
	size_t i;
	int rc = 0;

	buf_init(&b, MANIFEST_MAX_FILE);
	files = json_array();
	seen = json_object();
	root = json_pack("{s:o}", "files", files); /* files stolen */
	if (!files || !seen || !root) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < m->n; i++) {
		const char *file = m->docs[i].file;
		json_t *name, *text;

		if (!file || json_object_get(seen, file))
			continue;
		buf_reset(&b);
		rc = buf_read_file(&b, file, e);
		if (rc)
			goto out;
		name = json_string(file);
		text = json_stringn(b.ptr, b.len);
		if (!name || !text) {
			json_decref(name);
			json_decref(text);
			rc = err_set(e, ERR_INVALID,
				     "'%s': the file name or text is not valid UTF-8",
				     file);
			goto out;
		}
		/* name and text stolen by the pack, the pack by the append */
		if (json_object_set_new(seen, file, json_true()) ||
		    json_array_append_new(files, json_pack("{s:o,s:o}", "name",
							    name, "text", text))) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	*out = json_dumps(root, JSON_COMPACT);
	if (!*out)
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	json_decref(root);
	json_decref(seen);
	buf_release(&b);
	return rc;
}

/*
 * Run apply (or diff) where conn points: the store, or the server. Caller
 * owns *res, apply's result JSON.
 */
static int run_apply(struct cli_conn *conn, const struct manifest_set *m,
		     const struct apply_opts *o, bool diff, json_t **res,
		     struct err *e)
{
	struct buf path = BUF_INIT;
	char *body = NULL, *set = NULL;
	json_t *reply = NULL;
	int rc;

	if (conn->store)
		return diff ? apply_diff(conn->store, m, o, res, e) :
			      apply_run(conn->store, m, o, res, e);
	if (o->applyset) {
		set = client_escape(conn->http, o->applyset);
		if (!set)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	rc = buf_printf(&path, "/api/v1/%s?dryRun=%s&prune=%s&force=%s%s%s",
			diff ? "diff" : "apply", o->dry_run ? "true" : "false",
			o->prune ? "true" : "false",
			o->force ? "true" : "false", set ? "&applyset=" : "",
			set ? set : "");
	if (rc) {
		rc = err_set(e, rc, "out of memory");
		goto out;
	}
	rc = files_body(m, &body, e);
	if (rc)
		goto out;
	rc = cli_http(conn, "POST", path.ptr, API_APPLY_FILES_TYPE, body,
		      strlen(body), &reply, e);
	if (rc)
		goto out;
	if (!json_is_array(json_object_get(reply, "items"))) {
		rc = err_set(e, ERR_INVALID,
			     "unexpected reply from pocketctl server at %s (no items)",
			     client_url(conn->http));
		goto out;
	}
	*res = reply;
	reply = NULL;
out:
	json_decref(reply);
	free(body);
	free(set);
	buf_release(&path);
	return rc;
}

static void print_items(const struct cli *cli, json_t *res, const char *suffix)
{
	json_t *item;
	size_t i;
	char kind[64];

	json_array_foreach(json_object_get(res, "items"), i, item) {
		cli_item_kind(cli, item, kind, sizeof(kind));
		printf("%s/%s %s%s\n", kind, cli_jstr(item, "name"),
		       cli_jstr(item, "action"), suffix);
	}
}

int cmd_apply(struct cli *cli, int argc, char **argv)
{
	struct apply_args a;
	struct manifest_set m = { NULL, 0 };
	struct cli_conn conn = CLI_CONN_INIT;
	struct err e = ERR_INIT;
	json_t *res = NULL;
	int rc;

	memset(&a, 0, sizeof(a));
	argc = cli_take_conn_opts(cli, "apply", argc, argv);
	if (argc < 0)
		return CLI_ERROR;
	rc = parse_args("apply", argc, argv, &a);
	if (rc)
		goto out;
	if (manifest_load_paths(cli->schema, a.paths, a.npaths, &m, &e) ||
	    cli_connect(cli, true, &conn, &e) ||
	    run_apply(&conn, &m, &a.opts, false, &res, &e)) {
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
	cli_disconnect(&conn);
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
	struct cli_conn conn = CLI_CONN_INIT;
	struct err e = ERR_INIT;
	json_t *res = NULL, *item;
	char tmpl[] = "/tmp/pocketctl-diff-XXXXXX";
	char *root = NULL, *live = NULL, *merged = NULL;
	size_t i, changed = 0;
	int rc;

	memset(&a, 0, sizeof(a));
	argc = cli_take_conn_opts(cli, "diff", argc, argv);
	if (argc < 0)
		return CLI_ERROR;
	rc = parse_args("diff", argc, argv, &a);
	if (rc)
		goto out;
	/* A diff writes nothing, but runs apply's transaction to compute
	 * the result, so the store is opened for writing. */
	if (manifest_load_paths(cli->schema, a.paths, a.npaths, &m, &e) ||
	    cli_connect(cli, true, &conn, &e) ||
	    run_apply(&conn, &m, &a.opts, true, &res, &e)) {
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
		const char *action = cli_jstr(item, "action");
		char kind[64], name[512], *p;

		if (!strcmp(action, "unchanged"))
			continue;
		changed++;
		cli_item_kind(cli, item, kind, sizeof(kind));
		snprintf(name, sizeof(name), "%s.%s.yaml", kind,
			 cli_jstr(item, "name"));
		/* One file per record, inside the temporary tree, whatever
		 * the record's name holds. */
		for (p = name; *p; p++)
			if (*p == '/')
				*p = '_';
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
	cli_disconnect(&conn);
	manifest_set_release(&m);
	free(a.paths);
	return rc;
}
