/*
 * cmd_restart.c - `pocketctl restart NAME [--wait [--timeout DURATION]]`:
 * ask the running server to restart a managed container (POST
 * /api/v1/containers/NAME/restart). Only the server drives the container
 * engine, so there is no offline form; the restart itself happens in the
 * background and shows in the container's status, which this command then
 * reads (GET /api/v1/manifests/containers/NAME?view=record):
 *   - the container engine unreachable (condition Degraded, reason
 *     EngineUnreachable): said, exit 3 - the request stays recorded and
 *     runs when the engine is back;
 *   - with --wait, until status.manualRestartHandled is this request's id:
 *     lastAction Succeeded exits 0, Failed exits 3 with its message; no
 *     outcome within --timeout (default 2 minutes) exits 4.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "util.h"

#define RESTART_USAGE "usage: pocketctl restart NAME [--wait [--timeout DURATION]]"
#define RESTART_TIMEOUT_MS 120000
#define RESTART_POLL_MS 250

/* The condition of type in a status object, or NULL. Borrowed. */
static json_t *condition(json_t *status, const char *type)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(status, "conditions"), i, c)
		if (!strcmp(cli_jstr(c, "type"), type))
			return c;
	return NULL;
}

/* The container record's status (*out, caller owns it). */
static int fetch_status(struct cli *cli, const char *esc, json_t **out,
			struct err *e)
{
	json_t *rec = NULL;
	char *path = NULL;
	int rc;

	if (asprintf(&path, "/api/v1/manifests/containers/%s?view=record", esc) < 0)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = cli_http(&cli->conn, "GET", path, NULL, NULL, 0, &rec, e);
	free(path);
	if (rc)
		return rc;
	*out = json_incref(json_object_get(rec, "status"));
	json_decref(rec);
	return 0;
}

/*
 * What the status says of request id: CLI_OK (restarted), CLI_DEGRADED
 * (failed, or the engine unreachable; said on stderr), or -1 (not yet).
 */
static int outcome(const char *name, json_t *st, const char *id)
{
	json_t *deg = condition(st, "Degraded"), *la;

	if (!strcmp(cli_jstr(st, "manualRestartHandled"), id)) {
		la = json_object_get(st, "lastAction");
		if (!strcmp(cli_jstr(la, "phase"), "Succeeded"))
			return CLI_OK;
		if (!strcmp(cli_jstr(la, "phase"), "Failed")) {
			fprintf(stderr, "pocketctl: restart: container/%s did not restart: %s%s%s\n",
				name, *cli_jstr(la, "failReason") ? cli_jstr(la, "failReason") : "ActionFailed",
				*cli_jstr(la, "message") ? ": " : "", cli_jstr(la, "message"));
			return CLI_DEGRADED;
		}
	}
	if (!strcmp(cli_jstr(deg, "status"), "True") &&
	    !strcmp(cli_jstr(deg, "reason"), "EngineUnreachable")) {
		fprintf(stderr, "pocketctl: restart: the container engine is unreachable (%s); "
			"the request stays recorded and runs when the engine is back\n",
			cli_jstr(deg, "message"));
		return CLI_DEGRADED;
	}
	return -1;
}

int cmd_restart(struct cli *cli, int argc, char **argv)
{
	struct timespec nap = { 0, RESTART_POLL_MS * 1000000L };
	struct err e = ERR_INIT;
	json_t *reply = NULL, *st = NULL;
	char *esc = NULL, *path = NULL, id[64];
	const char *name;
	struct cli_wait w = { false, false, RESTART_TIMEOUT_MS };
	int64_t deadline;
	int i, rc = CLI_ERROR;

	i = cli_take_wait("restart", argc, argv, &w);
	if (i < 0)
		return CLI_ERROR;
	if (argc - i != 1 || !argv[i][0])
		return cli_usage("restart", RESTART_USAGE);
	name = argv[i];
	if (cli->offline)
		return cli_usage("restart",
				 "restart needs a running server (pocketctl serve); --offline cannot restart containers");
	deadline = util_monotonic_ms() + w.timeout_ms;
	if (cli_connect(cli, &e))
		goto fail;
	if (!cli->conn.http) {
		err_set(&e, ERR_UNAVAILABLE,
			"no server is running on data directory '%s': restart needs "
			"pocketctl serve (or --server URL)", cli->data_dir);
		goto fail;
	}
	if (w.wait)   /* a server that hangs must not outlast the deadline */
		client_set_timeout(cli->conn.http, (long)w.timeout_ms + 2000);
	esc = client_escape(cli->conn.http, name);
	if (!esc || asprintf(&path, "/api/v1/containers/%s/restart", esc) < 0) {
		path = NULL;
		err_set(&e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (cli_http(&cli->conn, "POST", path, NULL, NULL, 0, &reply, &e))
		goto fail;
	snprintf(id, sizeof(id), "%s", cli_jstr(json_object_get(reply, "request"), "id"));
	printf("container/%s restart requested (request %s)\n", name, id);
	for (;;) {
		json_decref(st);
		st = NULL;
		if (fetch_status(cli, esc, &st, &e)) {
			if (w.wait && util_monotonic_ms() >= deadline)
				goto timeout;
			goto fail;
		}
		rc = outcome(name, st, id);
		if (rc == CLI_OK)
			printf("container/%s restarted\n", name);
		if (rc >= 0 || !w.wait)
			break;
		if (util_monotonic_ms() >= deadline) {
timeout:
			fprintf(stderr, "pocketctl: restart: container/%s did not restart within %s "
				"(see pocketctl get container %s -o record)\n", name,
				w.has_timeout ? "--timeout" : "2 minutes (the default --timeout)",
				name);
			rc = CLI_TIMEOUT;
			break;
		}
		nanosleep(&nap, NULL);
	}
	if (rc < 0)
		rc = CLI_OK;          /* requested; not waited for */
	goto out;
fail:
	rc = cli_fail(&e);
out:
	json_decref(st);
	json_decref(reply);
	free(path);
	free(esc);
	return rc;
}
