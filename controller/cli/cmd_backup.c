/*
 * cmd_backup.c - `pocketctl backup [--to FILE]` and `pocketctl restore
 * FILE`. A backup is an online, consistent copy of the store
 * (store_backup()): made by the running server when there is one
 * (POST /api/v1/backups), so the CLI never opens a store a server holds,
 * and by the CLI itself offline. A restore replaces the store of the data
 * directory with a checked backup; it needs the directory to itself, so it
 * refuses while a server (or another command) uses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define BACKUP_USAGE "usage: pocketctl backup [--to FILE] [-o text|json]"
#define RESTORE_USAGE "usage: pocketctl restore FILE"

/* FILE as an absolute path (its directory resolved, which must exist). */
static int absolute(const char *file, char **out, struct err *e)
{
	char *d = strdup(file), *b = strdup(file), real[PATH_MAX];
	int rc = 0;

	*out = NULL;
	if (!d || !b) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!path_component_ok(basename(b))) {
		rc = err_set(e, ERR_INVALID, "--to '%s' does not name a file",
			     file);
		goto out;
	}
	if (!realpath(dirname(d), real)) {
		rc = err_set(e, ERR_INVALID, "--to '%s': directory: %s", file,
			     strerror(errno));
		goto out;
	}
	*out = path_join(real, basename(b));
	if (!*out)
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	free(d);
	free(b);
	return rc;
}

/* Back up the open store offline, into to (NULL: DIR/backups). */
static int backup_offline(struct cli *cli, const char *to, json_t **rep,
			  struct err *e)
{
	struct store_backup_opts o = { NULL, NULL, NULL };
	struct store_backup_info info = { NULL, 0, 0 };
	char *dflt = NULL, *d = NULL, *b = NULL;
	int rc;

	if (to) {
		d = strdup(to);
		b = strdup(to);
		if (!d || !b) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		o.dir = dirname(d);
		o.file = basename(b);
	} else {
		dflt = path_join(cli->data_dir, STORE_BACKUP_DIR);
		if (!dflt) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		o.dir = dflt;
	}
	rc = store_backup(cli->conn.store, &o, &info, e);
	if (rc)
		goto out;
	*rep = json_pack("{s:s,s:s,s:I,s:I}", "key", strrchr(info.path, '/') + 1,
			 "path", info.path, "size", (json_int_t)info.size,
			 "revision", (json_int_t)info.revision);
	if (!*rep)
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	store_backup_info_release(&info);
	free(dflt);
	free(d);
	free(b);
	return rc;
}

int cmd_backup(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct err e = ERR_INIT;
	json_t *rep = NULL, *body = NULL;
	char *to = NULL, *text = NULL;
	const char *to_arg = NULL;
	int c, rc = CLI_ERROR;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 't')
			return cli_usage("backup", "unknown or incomplete option '%s'",
					 argv[optind - 1]);
		to_arg = optarg;
	}
	if (optind != argc)
		return cli_usage("backup", BACKUP_USAGE);
	if (to_arg && absolute(to_arg, &to, &e))
		goto fail;
	if (cli_connect(cli, &e))
		goto fail;
	if (cli->conn.store) {
		if (backup_offline(cli, to, &rep, &e))
			goto fail;
	} else {
		body = to ? json_pack("{s:s}", "path", to) : json_object();
		text = body ? json_dumps(body, JSON_COMPACT) : NULL;
		if (!text) {
			err_set(&e, ERR_NOMEM, "out of memory");
			goto fail;
		}
		if (cli_http(&cli->conn, "POST", "/api/v1/backups",
			     "application/json", text, strlen(text), &rep, &e))
			goto fail;
		free(text);
		text = NULL;
	}
	if (!strcmp(cli->output, "json")) {
		text = json_dumps(rep, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (text)
			printf("%s\n", text);
	} else {
		printf("backup %s: %" JSON_INTEGER_FORMAT " bytes, revision %"
		       JSON_INTEGER_FORMAT "\n", cli_jstr(rep, "path"),
		       json_integer_value(json_object_get(rep, "size")),
		       json_integer_value(json_object_get(rep, "revision")));
	}
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(&e);
out:
	json_decref(rep);
	json_decref(body);
	free(text);
	free(to);
	return rc;
}

/*
 * Take DIR/lock exclusively without waiting: a server holds it (exclusive)
 * for as long as it runs, an offline command (shared) while it works.
 * *fd receives the locked descriptor. ERR_UNAVAILABLE when it is held,
 * naming the server's URL when DIR/server.json has one.
 */
static int lock_dir(const struct cli *cli, int *fd, struct err *e)
{
	const char *dir = cli->data_dir;
	char *path = NULL, *url = NULL;
	int f = -1, rc = 0;

	*fd = -1;
	rc = fs_mkdirs(dir, e);
	if (rc)
		return rc;
	path = path_join(dir, CLI_LOCK_FILE);
	if (!path)
		return err_set(e, ERR_NOMEM, "out of memory");
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f < 0) {
		rc = err_set(e, ERR_IO, "cannot open '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	while ((rc = flock(f, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
		;
	if (rc < 0 && errno != EWOULDBLOCK) {
		rc = err_set(e, ERR_IO, "cannot lock '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	if (rc < 0) {
		url = cli_local_url(cli);
		if (url)
			rc = err_set(e, ERR_UNAVAILABLE,
				     "a server is running on data directory '%s' (%s): stop it before restoring",
				     dir, url);
		else
			rc = err_set(e, ERR_UNAVAILABLE,
				     "another pocketctl command is using data directory '%s': wait for it before restoring",
				     dir);
		goto out;
	}
	*fd = f;
	f = -1;
out:
	if (f >= 0)
		close(f);
	free(path);
	free(url);
	return rc;
}

int cmd_restore(struct cli *cli, int argc, char **argv)
{
	struct err e = ERR_INIT;
	char *replaced = NULL;
	int fd = -1, rc, i = cli_operands("restore", argc, argv);

	if (i < 0)
		return CLI_ERROR;
	if (argc - i != 1 || !argv[i][0])
		return cli_usage("restore", RESTORE_USAGE);
	if (cli->server) {
		err_set(&e, ERR_INVALID,
			"restore works on the data directory itself, not through --server");
		rc = cli_fail(&e);
		goto out;
	}
	if (lock_dir(cli, &fd, &e) ||
	    store_restore(cli->schema, cli->data_dir, argv[i], &replaced, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	printf("restored %s into %s", argv[i], cli->data_dir);
	if (replaced)
		printf(" (the replaced store is kept as %s)", replaced);
	printf("\n");
	rc = CLI_OK;
out:
	if (fd >= 0)
		close(fd);
	free(replaced);
	return rc;
}
