/*
 * cmd_status.c - `pocketctl status [NAME] [-o text|json]` and `pocketctl
 * reconcile [--wait [--timeout DURATION]] [-o text|json]`.
 *
 * Both talk to the running server (GET /api/v1/status, POST
 * /api/v1/reconcile, see api_status.h) through the CLI's HTTP client.
 * Offline (no server holds the data directory) `status` reads what the
 * engine last stored in the reconcile_status records instead, without the
 * live queue; `reconcile` needs a server. Exit codes (cli_exit_codes):
 * 0 ok; 3 when a reconciler shown by `status` is Degraded, or when
 * `reconcile --wait` ends with one Degraded; 4 when `reconcile --wait`
 * sees neither every reconciler Ready nor one Degraded within --timeout
 * (the server's full pass included); 2 on errors.
 */
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "protocol.h"
#include "util.h"

enum status_output { SO_TEXT, SO_JSON };

static const char *jstr_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

/* The condition field key of type in a status object, or "-". */
static const char *cond_of(json_t *st, const char *type, const char *key)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(st, "conditions"), i, c)
		if (!strcmp(jstr_or(c, "type", ""), type))
			return jstr_or(c, key, "-");
	return "-";
}

/* One line of text, cut at width display bytes (no newline inside). */
static void put_cut(const char *s, size_t width)
{
	size_t n = strcspn(s, "\n");

	if (n > width)
		printf("%.*s...", (int)(width - 3), s);
	else
		printf("%.*s", (int)n, s);
}

static void print_row(json_t *st)
{
	const char *ready = cond_of(st, "Ready", "status");
	const char *degraded = cond_of(st, "Degraded", "status");
	const char *reason = cond_of(st, !strcmp(degraded, "True") ? "Degraded" :
				     "Ready", "reason");
	const char *msg = cond_of(st, !strcmp(degraded, "True") ? "Degraded" :
				  "Ready", "message");

	printf("%-16s %-6s %-9s %-24s %-9lld %-6zu ",
	       jstr_or(st, "name", "?"), ready, degraded, reason,
	       (long long)json_integer_value(json_object_get(st,
							    "observedRevision")),
	       json_array_size(json_object_get(st, "artifacts")));
	put_cut(msg, 80);
	printf("\n");
}

static void print_detail(json_t *st)
{
	json_t *v, *a;
	size_t i;

	printf("Name:              %s\n", jstr_or(st, "name", "?"));
	printf("Description:       %s\n", jstr_or(st, "description", ""));
	printf("Observed revision: %lld\n",
	       (long long)json_integer_value(json_object_get(st,
							    "observedRevision")));
	if (json_object_get(st, "directory")) {
		printf("Directory:         %s\n", jstr_or(st, "directory", ""));
		printf("Applied revision:  %s%s\n",
		       jstr_or(st, "lastAppliedRevision", ""),
		       json_is_true(json_object_get(st, "dirty")) ?
		       " (work tree dirty)" : "");
	}
	if (*jstr_or(st, "lastError", ""))
		printf("Last error:        %s\n", jstr_or(st, "lastError", ""));
	if (*jstr_or(st, "nextRetryTime", ""))
		printf("Next retry:        %s (failures: %lld)\n",
		       jstr_or(st, "nextRetryTime", ""),
		       (long long)json_integer_value(json_object_get(st,
								    "failures")));
	printf("Conditions:\n");
	json_array_foreach(json_object_get(st, "conditions"), i, v)
		printf("  %-12s %-7s %-24s %s  %s\n", jstr_or(v, "type", ""),
		       jstr_or(v, "status", ""), jstr_or(v, "reason", ""),
		       jstr_or(v, "lastTransitionTime", ""),
		       jstr_or(v, "message", ""));
	printf("Artifacts:\n");
	json_array_foreach(json_object_get(st, "artifacts"), i, a)
		printf("  %s  %.12s  %s  %s%s%s\n", cond_of(a, "Ready", "status"),
		       jstr_or(a, "sha256", ""), jstr_or(a, "mode", ""),
		       jstr_or(a, "path", ""),
		       *jstr_or(a, "lastError", "") ? ": " : "",
		       jstr_or(a, "lastError", ""));
	if (json_array_size(json_object_get(st, "warnings"))) {
		printf("Warnings:\n");
		json_array_foreach(json_object_get(st, "warnings"), i, v)
			printf("  %s\n", json_string_value(v));
	}
	if (json_array_size(json_object_get(st, "events"))) {
		printf("Events:\n");
		json_array_foreach(json_object_get(st, "events"), i, v)
			printf("  %s  %s  %s  %s\n", jstr_or(v, "time", ""),
			       jstr_or(v, "type", ""), jstr_or(v, "reason", ""),
			       jstr_or(v, "message", ""));
	}
}

/* Every status object (reconcilers, then the manifests one) in order. */
static void each_status(json_t *status, void (*fn)(json_t *))
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(status, "reconcilers"), i, v)
		fn(v);
	v = json_object_get(status, "manifests");
	if (json_is_object(v))
		fn(v);
}

static json_t *find_status(json_t *status, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(status, "reconcilers"), i, v)
		if (!strcmp(jstr_or(v, "name", ""), name))
			return v;
	v = json_object_get(status, "manifests");
	if (json_is_object(v) && !strcmp(jstr_or(v, "name", ""), name))
		return v;
	return NULL;
}

/* CLI_DEGRADED when st has Degraded=True, else CLI_OK. */
static int is_degraded(json_t *st)
{
	return !strcmp(cond_of(st, "Degraded", "status"), "True") ?
	       CLI_DEGRADED : CLI_OK;
}

/* CLI_DEGRADED when any reconciler (or the manifests watch) is. */
static int any_degraded(json_t *status)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(status, "reconcilers"), i, v)
		if (is_degraded(v))
			return CLI_DEGRADED;
	v = json_object_get(status, "manifests");
	return json_is_object(v) ? is_degraded(v) : CLI_OK;
}

static int print_status(json_t *status, const char *name,
			enum status_output out, struct err *e)
{
	json_t *one = NULL;
	char *text;

	if (name) {
		one = find_status(status, name);
		if (!one)
			return err_set(e, ERR_NOT_FOUND,
				       "no reconciler named '%s'", name);
	}
	if (out == SO_JSON) {
		text = json_dumps(one ? one : status,
				  JSON_INDENT(2) | JSON_SORT_KEYS);
		if (!text)
			return err_set(e, ERR_NOMEM, "out of memory");
		printf("%s\n", text);
		free(text);
		return 0;
	}
	if (one) {
		print_detail(one);
		return 0;
	}
	if (json_is_true(json_object_get(status, "offline")))
		printf("(offline: the status last stored; no server is running)\n");
	else
		printf("head revision %lld, engine %s, root %s\n",
		       (long long)json_integer_value(json_object_get(status, "head")),
		       json_is_true(json_object_get(json_object_get(status, "engine"),
						    "running")) ? "running" : "stopped",
		       jstr_or(status, "root", "?"));
	printf("%-16s %-6s %-9s %-24s %-9s %-6s %s\n", "NAME", "READY",
	       "DEGRADED", "REASON", "REVISION", "FILES", "MESSAGE");
	each_status(status, print_row);
	return 0;
}

/* Offline: the reconcile_status records as the server would show them. */
static int offline_one(const struct record *r, void *arg)
{
	json_t *status = arg, *o;

	o = json_is_object(r->status) ? json_deep_copy(r->status) : json_object();
	if (!o)
		return ERR_NOMEM;
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set(o, "description", json_object_get(r->data, "description"));
	json_object_set(o, "reads", json_object_get(r->data, "reads"));
	if (!strcmp(r->name, PROTO_MANIFESTS_KEY))
		return json_object_set_new(status, "manifests", o) ? ERR_NOMEM : 0;
	return json_array_append_new(json_object_get(status, "reconcilers"), o) ?
	       ERR_NOMEM : 0;
}

static int fetch_offline(struct store *s, json_t **out, struct err *e)
{
	json_t *status = json_pack("{s:b, s:[], s:I}", "offline", 1,
				   "reconcilers", "head",
				   (json_int_t)store_head(s));
	int rc;

	if (!status)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = store_list(s, PROTO_STATUS_COLLECTION, NULL, offline_one, status,
			e);
	if (rc == ERR_NOMEM)
		err_set(e, rc, "out of memory");
	if (rc) {
		json_decref(status);
		return rc;
	}
	*out = status;
	return 0;
}

static enum status_output output_of(const struct cli *cli)
{
	return !strcmp(cli->output, "json") ? SO_JSON : SO_TEXT;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	struct err e = ERR_INIT;
	json_t *status = NULL;
	const char *name;
	int i, rc;

	i = cli_operands("status", argc, argv);
	if (i < 0)
		return CLI_ERROR;
	if (argc - i > 1)
		return cli_usage("status", "usage: pocketctl status [NAME] [-o text|json]");
	name = i < argc ? argv[i] : NULL;
	rc = cli_connect(cli, &e);
	if (!rc)
		rc = cli->conn.store ?
		     fetch_offline(cli->conn.store, &status, &e) :
		     cli_http(&cli->conn, "GET", "/api/v1/status", NULL, NULL,
			      0, &status, &e);
	if (!rc)
		rc = print_status(status, name, output_of(cli), &e);
	if (!rc)
		rc = name ? is_degraded(find_status(status, name)) :
		     any_degraded(status);
	else
		rc = cli_fail(&e);
	json_decref(status);
	return rc;
}

/* Is every reconciler (and the manifests watch) Ready? */
static bool all_ready(json_t *status)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(status, "reconcilers"), i, v)
		if (strcmp(cond_of(v, "Ready", "status"), "True"))
			return false;
	v = json_object_get(status, "manifests");
	return !json_is_object(v) || !strcmp(cond_of(v, "Ready", "status"), "True");
}

#define RECONCILE_TIMEOUT_MS 30000     /* --wait without --timeout */
#define RECONCILE_SERVER_MAX_S 300      /* the server's ?timeout= bound */
#define RECONCILE_POLL_MS 200

/*
 * After the full pass: poll GET /api/v1/status until every reconciler is
 * Ready (CLI_OK) or one is Degraded (CLI_DEGRADED), or deadline passes
 * (CLI_TIMEOUT). *status is the last status seen (caller owns it).
 */
static int converge(struct cli *cli, int64_t deadline, json_t **status,
		    struct err *e)
{
	struct timespec ts = { 0, RECONCILE_POLL_MS * 1000000L };
	json_t *st;

	for (;;) {
		if (any_degraded(*status))
			return CLI_DEGRADED;
		if (all_ready(*status))
			return CLI_OK;
		if (util_monotonic_ms() >= deadline)
			return CLI_TIMEOUT;
		nanosleep(&ts, NULL);
		st = NULL;
		if (cli_http(&cli->conn, "GET", "/api/v1/status", NULL, NULL, 0,
			     &st, e))
			return -1;
		json_decref(*status);
		*status = st;
	}
}

int cmd_reconcile(struct cli *cli, int argc, char **argv)
{
	enum status_output out = output_of(cli);
	struct err e = ERR_INIT;
	json_t *reply = NULL, *status = NULL;
	struct cli_wait w = { false, false, RECONCILE_TIMEOUT_MS };
	int64_t deadline;
	char path[96];
	int i, rc;

	i = cli_take_wait("reconcile", argc, argv, &w);
	if (i < 0)
		return CLI_ERROR;
	if (i < argc)
		return cli_usage("reconcile", "unexpected argument '%s'", argv[i]);
	deadline = util_monotonic_ms() + w.timeout_ms;
	if (w.wait)
		snprintf(path, sizeof(path), "/api/v1/reconcile?wait=true&timeout=%lld",
			 (long long)(w.timeout_ms < 1000 ? 1 :
				     w.timeout_ms / 1000 > RECONCILE_SERVER_MAX_S ?
				     RECONCILE_SERVER_MAX_S : w.timeout_ms / 1000));
	else
		snprintf(path, sizeof(path), "/api/v1/reconcile");
	rc = cli_connect(cli, &e);
	if (!rc && cli->conn.store)
		rc = err_set(&e, ERR_UNAVAILABLE,
			     "reconcile needs a running server (pocketctl serve) on data directory '%s'",
			     cli->data_dir);
	/* A server that hangs must not outlast the deadline either. */
	if (!rc && w.wait)
		client_set_timeout(cli->conn.http, (long)w.timeout_ms + 2000);
	if (!rc)
		rc = cli_http(&cli->conn, "POST", path, PROTO_JSON_TYPE, "{}",
			      2, &reply, &e);
	if (rc && w.wait && cli->conn.http &&
	    (client_last_status(cli->conn.http) == 504 ||
	     util_monotonic_ms() >= deadline)) {
		fprintf(stderr, "pocketctl: reconcile: the full pass did not complete within %s\n",
			w.has_timeout ? "--timeout" : "30 s (the default --timeout)");
		return CLI_TIMEOUT;
	}
	if (rc)
		return cli_fail(&e);
	if (!w.wait) {
		if (out == SO_JSON)
			print_status(reply, NULL, SO_JSON, &e);
		else
			printf("full pass %lld requested\n",
			       (long long)json_integer_value(json_object_get(reply,
									    "requested")));
		json_decref(reply);
		return CLI_OK;
	}
	status = json_incref(json_object_get(reply, "status"));
	rc = converge(cli, deadline, &status, &e);
	if (rc < 0) {
		rc = cli_fail(&e);
		goto out;
	}
	if (out == SO_JSON) {
		json_object_set(reply, "status", status);
		print_status(reply, NULL, SO_JSON, &e);
	} else {
		print_status(status, NULL, SO_TEXT, &e);
	}
	if (rc == CLI_TIMEOUT)
		fprintf(stderr, "pocketctl: reconcile: not every reconciler was Ready within %s\n",
			w.has_timeout ? "--timeout" : "30 s (the default --timeout)");
out:
	json_decref(status);
	json_decref(reply);
	return rc;
}
