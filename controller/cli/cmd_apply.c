/*
 * cmd_apply.c - `pocketctl apply -f PATH...` and `pocketctl diff -f PATH...`.
 *
 * Both load and check the manifests locally first (same FILE:LINE:COL
 * errors either way), then run the same transaction (apply.c): on the data
 * directory when working offline, or on the server through POST
 * /api/v1/apply or /api/v1/diff, sending each file's text - as read for
 * the local check, not read again - under its own name (the files form of
 * protocol.h) so that the server's errors still name the user's files. The result JSON is the same in both cases, and so
 * is the output: apply prints one kubectl-style line per record, diff
 * writes the live and desired documents to two temporary trees and runs an
 * external diff over them, as kubectl does (POCKETCTL_EXTERNAL_DIFF,
 * default "diff -u -N").
 *
 * Problems are printed all at once, one line each: offline those of the
 * local load and apply (one err_list), through a server the list of its
 * reply (http_reply_errors()), which it found checking the same texts -
 * so the lines are the same either way.
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
#include "protocol.h"
#include "secrets.h"
#include "selector.h"
#include "util.h"
#include "yamljson.h"

struct apply_args {
	const char **paths;
	size_t npaths;
	struct apply_opts opts;
	bool show_secrets;      /* --show-secrets: secret fields in clear */
};

enum { OPT_DRY_RUN = 1000, OPT_PRUNE, OPT_FORCE, OPT_APPLYSET,
       OPT_SHOW_SECRETS };

static int parse_args(const char *cmd, int argc, char **argv,
		      struct apply_args *a)
{
	static const struct option longopts[] = {
		{ "filename", required_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "prune", no_argument, NULL, OPT_PRUNE },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "applyset", required_argument, NULL, OPT_APPLYSET },
		{ "show-secrets", no_argument, NULL, OPT_SHOW_SECRETS },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->paths = calloc((size_t)argc + 1, sizeof(*a->paths));
	if (!a->paths)
		return cli_usage(cmd, "out of memory");
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			a->paths[a->npaths++] = optarg;
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
		case OPT_SHOW_SECRETS:
			a->show_secrets = true;
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
 * The manifests of an apply or diff: the files form of the request body
 * (protocol.h), {"files": [{"name", "text"}, ...]}, each file once, in
 * load order, read before anything else; offline, what they parse to.
 */
struct loaded {
	const struct schema *schema;
	struct manifest_set m;
	json_t *body;           /* owned */
	struct err_list errs;   /* the problems found, offline */
};

/* manifest_file_fn: one file's text into the body. */
static int add_file(void *arg, const char *file, const char *text,
		    size_t len, struct err *e)
{
	json_t *files = json_object_get(arg, PROTO_APPLY_FILES);
	json_t *name = json_string(file), *body = json_stringn(text, len);

	if (!name || !body) {
		json_decref(name);
		json_decref(body);
		return err_set(e, ERR_INVALID,
			       "'%s': the file name or text is not valid UTF-8",
			       file);
	}
	/* name and text stolen by the pack, the pack by the append */
	if (json_array_append_new(files, json_pack("{s:o,s:o}",
						   PROTO_APPLY_FILE_NAME, name,
						   PROTO_APPLY_FILE_TEXT, body)))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

/* Read the files (nothing parsed yet: offline, that happens in apply's
 * transaction, see parse_body()). */
static int load(const struct cli *cli, const struct apply_args *a,
		struct loaded *l, struct err *e)
{
	l->schema = cli->schema;
	l->body = json_pack("{s:[]}", PROTO_APPLY_FILES);
	if (!l->body)
		return err_set(e, ERR_NOMEM, "out of memory");
	return manifest_read_paths(a->paths, a->npaths, add_file, l->body,
				   &l->errs, e);
}

/* apply_load_fn: the files read into m, offline. */
static int parse_body(void *arg, const struct manifest_known *known,
		      struct manifest_set *m, struct err_list *errs,
		      struct err *e)
{
	const struct loaded *l = arg;
	json_t *f;
	size_t i;
	int rc = 0;

	json_array_foreach(json_object_get(l->body, PROTO_APPLY_FILES), i, f) {
		json_t *text = json_object_get(f, PROTO_APPLY_FILE_TEXT);

		rc = manifest_parse_file(l->schema, json_string_value(
				json_object_get(f, PROTO_APPLY_FILE_NAME)),
				json_string_value(text),
				json_string_length(text), known, m, errs, e);
		if (rc)
			break;
	}
	return rc;
}

static void loaded_release(struct loaded *l)
{
	manifest_set_release(&l->m);
	json_decref(l->body);
	err_list_release(&l->errs);
}

/* "N errors, nothing written" after the lines, and how many were left
 * out when there were more than shown. */
static void print_count(size_t shown, long long total)
{
	if (total > (long long)shown)
		fprintf(stderr, "pocketctl: ... and %lld more (only the first %zu are shown)\n",
			total - (long long)shown, shown);
	if (total > 1)
		fprintf(stderr, "pocketctl: %lld errors, nothing written\n",
			total);
}

/*
 * Print every problem that ended an apply or diff: those of the server's
 * reply when it has a list, else of l (offline), else e alone. Returns
 * CLI_ERROR.
 */
static int print_problems(const struct cli_conn *conn, const struct loaded *l,
			  const struct err *e)
{
	json_t *reply = conn->http ? client_last_error(conn->http) : NULL;
	json_t *list = json_object_get(reply, "errors"), *item;
	size_t i;

	if (json_array_size(list)) {
		json_array_foreach(list, i, item)
			fprintf(stderr, "pocketctl: %s\n", cli_jstr(item, "message"));
		print_count(json_array_size(list), json_integer_value(
				    json_object_get(reply, "errorCount")));
		return CLI_ERROR;
	}
	/* Offline: the list, unless something else (the store) failed. */
	if (!l->errs.n || e->code != l->errs.v[0].err.code)
		return cli_fail(e);
	for (i = 0; i < l->errs.n; i++)
		cli_fail(&l->errs.v[i].err);
	print_count(l->errs.n, (long long)l->errs.total);
	return CLI_ERROR;
}

/*
 * Run apply (or diff) where conn points: the store, or the server (which
 * masks secret fields unless show; see cli_mask_local() for the store).
 * Caller owns *res, apply's result JSON.
 */
static int run_apply(struct cli_conn *conn, struct loaded *l,
		     const struct apply_opts *o, bool diff, bool show,
		     json_t **res, struct err *e)
{
	struct buf path = BUF_INIT;
	char *body = NULL, *set = NULL;
	json_t *reply = NULL;
	int rc;

	if (conn->store) {
		struct apply_opts with = *o;

		/* The load's problems in, every other one added. */
		with.errors = &l->errs;
		if (!diff)
			return apply_run_load(conn->store, parse_body, l,
					      &l->m, &with, res, e);
		rc = parse_body(l, NULL, &l->m, &l->errs, e);
		return rc ? rc : apply_diff(conn->store, &l->m, &with, res, e);
	}
	if (o->applyset) {
		set = client_escape(conn->http, o->applyset);
		if (!set)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	rc = buf_printf(&path, "/api/v1/%s?dryRun=%s&prune=%s&force=%s%s%s%s",
			diff ? "diff" : "apply", o->dry_run ? "true" : "false",
			o->prune ? "true" : "false",
			o->force ? "true" : "false", set ? "&applyset=" : "",
			set ? set : "",
			show ? "&" PROTO_SHOW_SECRETS "=true" : "");
	if (rc) {
		rc = err_set(e, rc, "out of memory");
		goto out;
	}
	body = json_dumps(l->body, JSON_COMPACT);
	if (!body) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = cli_http(conn, "POST", path.ptr, PROTO_APPLY_FILES_TYPE, body,
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

/* " (took back spec.a from X, spec.b from Y)" for an item's tookBack
 * list (apply.h), or "" when it has none. */
static void took_back(json_t *item, char *out, size_t size)
{
	json_t *tb;
	size_t i, n = 0;

	out[0] = 0;
	json_array_foreach(json_object_get(item, "tookBack"), i, tb)
		if (n < size)
			n += (size_t)snprintf(out + n, size - n, "%s%s from %s",
					      i ? ", " : " (took back ",
					      cli_jstr(tb, "field"),
					      cli_jstr(tb, "from"));
	if (n && n < size)
		snprintf(out + n, size - n, ")");
}

static void print_items(const struct cli *cli, json_t *res, const char *suffix)
{
	json_t *item;
	size_t i;
	char kind[64], took[512];

	json_array_foreach(json_object_get(res, "items"), i, item) {
		cli_item_kind(cli, item, kind, sizeof(kind));
		took_back(item, took, sizeof(took));
		printf("%s/%s %s%s%s\n", kind, cli_jstr(item, "name"),
		       cli_jstr(item, "action"), took, suffix);
	}
}

/* Offline, the installation key that masked secrets are checked against
 * (apply.h: a mask applied back means "unchanged"), into *k and o. */
static int local_keys(struct cli *cli, struct auth_keys *k,
		      struct apply_opts *o, struct err *e)
{
	int rc;

	if (!cli->conn.store)
		return 0;
	rc = auth_keys_load_or_create(cli->data_dir, k, e);
	if (!rc)
		o->keys = k;
	return rc;
}

/*
 * What apply and diff share: parse the arguments, load and check the
 * manifests, connect and run the transaction. Returns 0 with *o the
 * options given and *res apply's result JSON (caller owns), or CLI_ERROR
 * after the message. A diff writes nothing, but runs apply's transaction
 * to compute the result, so its row opens the store for writing too.
 */
static int apply_common(struct cli *cli, int argc, char **argv, bool diff,
			struct apply_opts *o, json_t **res)
{
	struct apply_args a;
	struct loaded l = { NULL, { NULL, 0, 0 }, NULL, ERR_LIST_INIT };
	struct auth_keys k;
	struct err e = ERR_INIT;
	int rc;

	memset(&k, 0, sizeof(k));
	rc = parse_args(cli->cmd->name, argc, argv, &a);
	if (!rc && (load(cli, &a, &l, &e) || cli_connect(cli, &e) ||
		    local_keys(cli, &k, &a.opts, &e)))
		rc = cli_fail(&e);
	else if (!rc && run_apply(&cli->conn, &l, &a.opts, diff,
				  a.show_secrets, res, &e))
		rc = print_problems(&cli->conn, &l, &e);
	else if (!rc && !a.show_secrets && cli_mask_local(cli, NULL, *res, &e))
		rc = cli_fail(&e);
	auth_keys_wipe(&k);
	a.opts.keys = NULL;   /* k is gone */
	*o = a.opts;
	loaded_release(&l);
	free(a.paths);
	return rc;
}

int cmd_apply(struct cli *cli, int argc, char **argv)
{
	struct apply_opts o;
	json_t *res = NULL;
	char *txt;

	if (apply_common(cli, argc, argv, false, &o, &res))
		return CLI_ERROR;
	if (!strcmp(cli->output, "json")) {
		txt = json_dumps(res, JSON_INDENT(2));
		printf("%s\n", txt ? txt : "null");
		free(txt);
	} else {
		print_items(cli, res, o.dry_run ? " (dry run)" : "");
	}
	json_decref(res);
	return CLI_OK;
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

/*
 * Take -l SEL, -lSEL, --selector SEL and --selector=SEL out of argv (up to
 * a "--"); *text is the last one given, or NULL. Returns the new argc, or
 * -1 after the usage message for a missing value.
 */
static int take_selector(int argc, char **argv, const char **text)
{
	int i, j = 1;

	*text = NULL;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			while (i < argc)
				argv[j++] = argv[i++];
			break;
		}
		if (!strcmp(a, "-l") || !strcmp(a, "--selector")) {
			if (i + 1 >= argc) {
				cli_usage("diff", "%s needs a value", a);
				return -1;
			}
			*text = argv[++i];
		} else if (!strncmp(a, "-l", 2) && a[2]) {
			*text = a + 2;
		} else if (!strncmp(a, "--selector=", 11)) {
			*text = a + 11;
		} else {
			argv[j++] = argv[i];
		}
	}
	argv[j] = NULL;
	return j;
}

/* Does the diff item's object match sel? Its labels are those of the
 * manifest (desired), or of the record for one pruned away (live). */
static bool item_selected(const struct selector *sel, json_t *item)
{
	json_t *doc = json_object_get(item, "desired");

	if (!doc || json_is_null(doc))
		doc = json_object_get(item, "live");
	return selector_match(sel, json_object_get(json_object_get(doc,
						   "metadata"), "labels"));
}

int cmd_diff(struct cli *cli, int argc, char **argv)
{
	struct apply_opts o;
	struct err e = ERR_INIT;
	struct selector *sel = NULL;
	const char *sel_text;
	json_t *res = NULL, *item;
	char tmpl[] = "/tmp/pocketctl-diff-XXXXXX";
	char *root = NULL, *live = NULL, *merged = NULL;
	size_t i, changed = 0;
	int rc;

	argc = take_selector(argc, argv, &sel_text);
	if (argc < 0)
		return CLI_ERROR;
	if (sel_text && selector_parse(sel_text, &sel, &e))
		return cli_usage("diff", "%s", e.msg);
	if (apply_common(cli, argc, argv, true, &o, &res)) {
		selector_free(sel);
		return CLI_ERROR;
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
		char kind[64], name[512], took[512], *p;

		if (!strcmp(action, "unchanged") || !item_selected(sel, item))
			continue;
		changed++;
		cli_item_kind(cli, item, kind, sizeof(kind));
		took_back(item, took, sizeof(took));
		if (*took) /* before the diff tool's output, on the same stream */
			printf("%s/%s would be %s%s\n", kind,
			       cli_jstr(item, "name"), action, took);
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
	fflush(stdout);
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
	selector_free(sel);
	return rc;
}
