/*
 * commands.c - the command table of pocketctl and everything said about
 * it: each command's synopsis, one-line summary, options (with their
 * value names and help) and environment variables, the global options and
 * the exit codes. main() dispatches through the table; `COMMAND --help`,
 * `help COMMAND`, `help -o json` (the whole table as JSON, from which the
 * man page and shell completion are generated) print from it.
 *
 * To add a command: its options list, its row here, its cmd_*.c. To add
 * an option: one line in the command's list (the parser is the command's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

#ifndef POCKETCTL_VERSION
#define POCKETCTL_VERSION "0.1.0"    /* the Makefile passes git describe */
#endif

#define HELP_COL 30                  /* where an option's help starts */

/* ---- options, per command ---------------------------------------------- */

static const struct cli_option apply_opts[] = {
	{ "--filename", "-f", "PATH", "a manifest file or directory (repeatable; - reads standard input)" },
	{ "--dry-run", NULL, NULL, "check and report, write nothing" },
	{ "--applyset", NULL, "NAME", "apply the documents as the named apply set" },
	{ "--prune", NULL, NULL, "delete records of the apply set no longer in the manifests (needs --applyset)" },
	{ "--force", NULL, NULL, "with --prune, allow deleting more than half of the set" },
	{ "--show-secrets", NULL, NULL, "print secret fields in clear (superusers only)" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_option diff_opts[] = {
	{ "--filename", "-f", "PATH", "a manifest file or directory (repeatable; - reads standard input)" },
	{ "--applyset", NULL, "NAME", "compare as the named apply set" },
	{ "--prune", NULL, NULL, "also show the records a prune would delete (needs --applyset)" },
	{ "--selector", "-l", "SELECTOR", "only documents (or pruned records) whose labels match, kubectl's syntax" },
	{ "--show-secrets", NULL, NULL, "show secret fields in clear (superusers only)" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_envvar diff_env[] = {
	{ "POCKETCTL_EXTERNAL_DIFF", "the diff program to run instead of 'diff -u -N'" },
	{ NULL, NULL },
};

static const struct cli_option get_opts[] = {
	{ "--selector", "-l", "SELECTOR", "only records whose labels match: k=v,k!=v,k in (a,b),k notin (a),k,!k" },
	{ "--show-managed", NULL, NULL, "add metadata.managedFields (with -o yaml or -o json)" },
	{ "--show-secrets", NULL, NULL, "print secret fields in clear (superusers only)" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_option serve_opts[] = {
	{ "--listen", NULL, "HOST:PORT", "the address to listen on (default 127.0.0.1:8090; port 0 picks one)" },
	{ "--log-format", NULL, "text|json", "the server log's lines: text (default) or one JSON object each" },
	{ "--root", NULL, "DIR", "the render root of the files (default $POCKETCTL_ROOT or ./pocket-root)" },
	{ "--manifests", NULL, "DIR", "apply the manifests in DIR at start-up (and on SIGHUP)" },
	{ "--watch", NULL, NULL, "with --manifests, re-apply DIR on every change as an apply set, with prune" },
	{ "--applyset", NULL, "NAME", "with --watch, the apply set's name (default DIR's last component)" },
	{ "--docker", NULL, "URL", "the container engine, unix:///PATH or tcp://HOST:PORT (default $DOCKER_HOST)" },
	{ "--workers", NULL, "N", "request worker threads, 1 to 4096 (default 128)" },
	{ "--max-conns-per-ip", NULL, "N", "connections per client address, 0 for no cap (default 64)" },
	{ "--header-timeout", NULL, "SECONDS", "time for a request's headers and any single read or write (default 10)" },
	{ "--body-timeout", NULL, "SECONDS", "time for a request body (default 60)" },
	{ "--max-streams", NULL, "N", "open SSE streams (watch, realtime), 0 to 16384 (default 1024)" },
	{ "--max-body", NULL, "BYTES", "largest request body (default 1048576)" },
	{ "--max-apply-body", NULL, "BYTES", "largest body of /api/v1/apply and /api/v1/diff (default 16777216)" },
	{ "--token-ttl", NULL, "SECONDS", "lifetime of the auth tokens it issues (default 604800, 7 days)" },
	{ "--bcrypt-cost", NULL, "N", "bcrypt cost of new passwords, 4 to 31 (default 10)" },
	{ "--rate-limit", NULL, "GROUP=N/SECONDS", "a rate limit (repeatable, or comma-separated; N=0 turns GROUP off)" },
	{ "--backup-every", NULL, "DURATION", "take scheduled backups (1h, 30m, 45s...; off by default)" },
	{ "--backup-keep", NULL, "N", "scheduled backups to keep, 1 to 100000 (default 7)" },
	{ "--cron-grace", NULL, "DURATION", "catch up cron runs missed within DURATION (default 1h; 0: none)" },
	{ "--secret-key", NULL, "FILE", "the key file of the secrets at rest (default DATA_DIR/secret.key)" },
	{ "--observability-url", NULL, "URL", "the upstream of /api/pocketcoder/proxy/observability/ (http or https)" },
	{ "--push-relay", NULL, "URL", "the FCM push relay (default $PN_URL)" },
	{ "--push-relay-secret-file", NULL, "FILE", "the relay's shared secret, first line (else $PN_RELAY_SECRET)" },
	{ "--push-allow", NULL, "CIDR", "an address block push requests may reach (repeatable)" },
	{ "--push-rate", NULL, "N", "push requests per minute, 0 to 100000 (default 30)" },
	{ "--opencode-url", NULL, "URL", "OpenCode's server, told when an MCP server changes state (default $OPENCODE_URL)" },
	{ "--poco-notify-window", NULL, "DURATION", "with --opencode-url, tell chats active within DURATION (default 24h)" },
	{ NULL, NULL, NULL, NULL },
};

/* Every variable the program reads; serve --help lists them all (the
 * client's ones too: offline commands and serve share the data). */
static const struct cli_envvar serve_env[] = {
	{ "POCKETCTL_DATA", "the data directory when --data is not given (default ./pocket-data)" },
	{ "POCKETCTL_SYSTEM_DATA", "the installed daemon's data directory the CLI looks in (default /var/lib/pocketctl)" },
	{ "POCKETCTL_LOG_FORMAT", "text or json, as --log-format (the flag wins)" },
	{ "POCKETCTL_BCRYPT_COST", "offline account commands: bcrypt cost (default 10)" },
	{ "OPENCODE_URL", "OpenCode's server when --opencode-url is not given" },
	{ "POCKETCTL_POCO_ATTEMPTS", "telling Poco: attempts per chat (default 20)" },
	{ "POCKETCTL_POCO_BACKOFF_MS", "telling Poco: first retry, ms (default 1000)" },
	{ "POCKETCTL_POCO_TIMEOUT_MS", "telling Poco: one request's timeout, ms (default 10000)" },
	{ "POCKETCTL_ROOT", "the render root when --root is not given" },
	{ "POCKETCTL_PATHS", "the paths file (default DATA_DIR/paths.yaml)" },
	{ "POCKETCTL_SECRET_KEY_FILE", "the key file of the secrets at rest when --secret-key is not given" },
	{ "POCKETCTL_RATE_LIMIT", "rate limits, as --rate-limit (the flag wins)" },
	{ "POCKETCTL_ADMIN_EMAIL", "with _PASSWORD: the superuser created on first start" },
	{ "POCKETCTL_ADMIN_PASSWORD", "the password of POCKETCTL_ADMIN_EMAIL" },
	{ "POCKETBASE_SUPERUSER_EMAIL", "the original's name of POCKETCTL_ADMIN_EMAIL (read when the pair is unset)" },
	{ "POCKETBASE_SUPERUSER_PASSWORD", "the original's name of POCKETCTL_ADMIN_PASSWORD" },
	{ "POCKETCTL_USER_EMAIL", "with _PASSWORD: the human's users record (role admin), seeded at start" },
	{ "POCKETCTL_USER_PASSWORD", "the password of POCKETCTL_USER_EMAIL" },
	{ "POCKETBASE_ADMIN_EMAIL", "the original's name of POCKETCTL_USER_EMAIL (read when the pair is unset)" },
	{ "POCKETBASE_ADMIN_PASSWORD", "the original's name of POCKETCTL_USER_PASSWORD" },
	{ "POCKETCTL_AGENT_EMAIL", "with _PASSWORD: the agent's users record (role agent), seeded at start" },
	{ "POCKETCTL_AGENT_PASSWORD", "the password of POCKETCTL_AGENT_EMAIL" },
	{ "AGENT_EMAIL", "the original's name of POCKETCTL_AGENT_EMAIL (read when the pair is unset)" },
	{ "AGENT_PASSWORD", "the original's name of POCKETCTL_AGENT_PASSWORD" },
	{ "DOCKER_HOST", "the container engine when --docker is not given" },
	{ "PN_URL", "the push relay when --push-relay is not given" },
	{ "PN_RELAY_SECRET", "the relay's secret when --push-relay-secret-file is not given" },
	{ "TZDIR", "where the cron schedules' time zones are read (default the system's zoneinfo)" },
	{ "POCKETCTL_CHANGELOG_KEEP", "change-log entries retained for watch resumes (default the store's)" },
	{ "POCKETCTL_HEARTBEAT_MS", "SSE heartbeat interval of watch and log streams, ms (default 15000)" },
	{ "POCKETCTL_REALTIME_IDLE_MS", "a realtime connection without subscriptions is closed after, ms" },
	{ "POCKETCTL_STREAM_PUMP", "0: run every SSE stream on its own worker instead of the stream pump" },
	{ "POCKETCTL_PUMP_THREADS", "threads of the stream pump, 1-16 (default one per CPU, at most 4)" },
	{ "POCKETCTL_PUMP_NICE", "the stream pump threads run this much nicer than the server, 0-19 (default 5)" },
	{ "POCKETCTL_WATCH_TICKET_TTL", "a watch ticket's lifetime, s, 1-3600 (default 60)" },
	{ "POCKETCTL_STREAM_STALL_MS", "a stream whose socket takes nothing this long is closed, ms (default 60000)" },
	{ "POCKETCTL_PROXY_STALL_S", "the observability proxy's stall timeout, s (default 30)" },
	{ "POCKETCTL_RESYNC_MS", "the engine's periodic full pass, ms (default the engine's)" },
	{ "POCKETCTL_BACKOFF_MIN_MS", "first retry of a failed reconciler, ms" },
	{ "POCKETCTL_BACKOFF_MAX_MS", "longest retry delay of a failed reconciler, ms" },
	{ "POCKETCTL_DEBOUNCE_MS", "how long the engine gathers changes before a pass, ms" },
	{ "POCKETCTL_RESTART_QUIET_MS", "container restarts: quiet period after a change, ms (default 1000)" },
	{ "POCKETCTL_RESTART_MAX_DELAY_MS", "container restarts: longest a burst can defer one, ms (default 10000)" },
	{ "POCKETCTL_RESTART_BUDGET", "container restarts: actions per window (default 5)" },
	{ "POCKETCTL_RESTART_WINDOW_MS", "container restarts: the budget's window, ms (default 300000)" },
	{ "POCKETCTL_RESTART_COOLDOWN_MS", "container restarts: breaker open time, ms (default 60000)" },
	{ "POCKETCTL_RESTART_BACKOFF_MS", "container restarts: first retry after a failure, ms (default 1000)" },
	{ "POCKETCTL_RESTART_BACKOFF_MAX_MS", "container restarts: retry cap, ms (default 60000)" },
	{ "POCKETCTL_MCP_COOLDOWN", "seconds before a denied MCP server may be requested again (default 3600)" },
	{ "POCKETCTL_PUSH_ATTEMPTS", "push deliveries: attempts per notification (default 8)" },
	{ "POCKETCTL_PUSH_BACKOFF_MS", "push deliveries: first retry, ms (default 1000)" },
	{ "POCKETCTL_PUSH_KEEP", "push deliveries: settled notifications kept (default 1000)" },
	{ "POCKETCTL_PUSH_TIMEOUT_MS", "push deliveries: one request's timeout, ms (default 10000)" },
	{ "POCKETCTL_CRON_CLOCK_OFFSET", "for tests: seconds added to the cron scheduler's clock" },
	{ "POCKETCTL_TOKEN", "the CLI's auth token when --token is not given" },
	{ "POCKETCTL_SERVER", "the CLI's server URL when --server is not given" },
	{ "POCKETCTL_TIMEOUT", "the CLI's timeout of one request, in seconds (default 300)" },
	{ "POCKETCTL_EXTERNAL_DIFF", "diff's program instead of 'diff -u -N'" },
	{ "NO_PROXY", "the CLI's hosts reached without a proxy (loopback always is)" },
	{ NULL, NULL },
};

static const struct cli_option delete_opts[] = {
	{ "--filename", "-f", "PATH", "delete every record the manifests name (repeatable; - reads standard input)" },
	{ "--selector", "-l", "SELECTOR", "delete the records of KIND whose labels match" },
	{ "--ignore-not-found", NULL, NULL, "skip names that do not exist instead of failing (exit 0)" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_option superuser_opts[] = {
	{ "--password-stdin", NULL, NULL, "read the password from the first line of standard input instead of asking" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_option user_opts[] = {
	{ "--role", NULL, "admin|agent|user", "the account's role (create: default user)" },
	{ "--password-stdin", NULL, NULL, "read the password from the first line of standard input instead of asking" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_envvar account_env[] = {
	{ "POCKETCTL_BCRYPT_COST", "offline: the bcrypt cost of the new password (default 10)" },
	{ NULL, NULL },
};

static const struct cli_option restart_opts[] = {
	{ "--wait", NULL, NULL, "wait until the container has restarted (exit 0), or failed (exit 3)" },
	{ "--timeout", NULL, "DURATION", "with --wait, give up after DURATION (90, 45s, 2m; default 2m; exit 4)" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_option watch_opts[] = {
	{ "--since", NULL, "REV", "start after revision REV (replayed from the change log)" },
	{ "--selector", "-l", "SELECTOR", "only events of records whose labels match" },
	{ "--status", NULL, NULL, "also print status-only events (a reconciler's status reports)" },
	{ "--timeout", NULL, "DURATION", "give up after the server was unreachable for DURATION (exit 4)" },
	{ "--show-secrets", NULL, NULL, "print secret fields in clear (superusers only)" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_option reconcile_opts[] = {
	{ "--wait", NULL, NULL, "wait for the full pass and for every reconciler to be Ready (exit 0) or Degraded (exit 3)" },
	{ "--timeout", NULL, "DURATION", "with --wait, give up after DURATION (90, 45s, 2m; default 30s; exit 4)" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_option backup_opts[] = {
	{ "--to", NULL, "FILE", "write the backup to FILE (default DATA_DIR/backups/pocket-UTC-rREV.db)" },
	{ NULL, NULL, NULL, NULL },
};

static const struct cli_option logs_opts[] = {
	{ "--follow", "-f", NULL, "keep printing new lines until the container stops or Ctrl-C" },
	{ "--tail", NULL, "N", "start with the last N lines, 0 to 100000 or all (default 100)" },
	{ NULL, NULL, NULL, NULL },
};

/* ---- the table ---------------------------------------------------------- */

const struct cli_command cli_commands[] = {
	{ .name = "apply", .fn = cmd_apply,
	  .flags = CLI_CONN | CLI_WRITES | CLI_OUTPUT, .formats = "text|json",
	  .usage = "apply -f PATH... [--dry-run] [--applyset NAME [--prune [--force]]] [-o text|json] [--show-secrets]",
	  .summary = "make the records what the manifests say (all or nothing)",
	  .options = apply_opts },
	{ .name = "diff", .fn = cmd_diff,
	  .flags = CLI_CONN | CLI_WRITES | CLI_OUTPUT, .formats = "text|json",
	  .usage = "diff -f PATH... [-l SELECTOR] [--applyset NAME [--prune]] [--show-secrets]",
	  .summary = "show what apply would change, as a unified diff (exit 1 when something would)",
	  .options = diff_opts, .env = diff_env },
	{ .name = "get", .fn = cmd_get,
	  .flags = CLI_CONN | CLI_OUTPUT,
	  .formats = "table|wide|name|json|yaml|record|jsonpath",
	  .usage = "get KIND[,KIND...]|all [NAME...] [-l SELECTOR] [-o table|wide|name|json|yaml|record|jsonpath=TEMPLATE] [--show-managed] [--show-secrets]",
	  .summary = "print records of kinds, or some, as a table or as manifests",
	  .options = get_opts },
	{ .name = "delete", .fn = cmd_delete, .flags = CLI_CONN | CLI_WRITES,
	  .usage = "delete KIND NAME... | KIND -l SELECTOR | -f PATH... [--ignore-not-found]",
	  .summary = "delete records, all found first (one missing: nothing deleted)",
	  .options = delete_opts },
	{ .name = "api-resources", .fn = cmd_api_resources, .flags = CLI_OUTPUT,
	  .formats = "table|name|json",
	  .usage = "api-resources [-o table|name|json]",
	  .summary = "list the kinds with their plural, short names and collection" },
	{ .name = "explain", .fn = cmd_explain,
	  .usage = "explain KIND[.FIELD]",
	  .summary = "print a kind's fields (type, values, flags) and access rules, or one field" },
	{ .name = "serve", .fn = cmd_serve,
	  .usage = "serve [--listen HOST:PORT] [--log-format text|json] [--root DIR] [--manifests DIR] [--watch [--applyset NAME]] "
		   "[--docker unix:///PATH|tcp://HOST:PORT] "
		   "[--workers N] [--max-conns-per-ip N] [--header-timeout SECONDS] "
		   "[--body-timeout SECONDS] [--max-streams N] [--max-body BYTES] "
		   "[--max-apply-body BYTES] [--token-ttl SECONDS] [--bcrypt-cost N] "
		   "[--rate-limit GROUP=N/SECONDS]... "
		   "[--backup-every DURATION [--backup-keep N]] [--cron-grace DURATION] "
		   "[--secret-key FILE] [--observability-url URL] "
		   "[--push-relay URL] [--push-relay-secret-file FILE] "
		   "[--push-allow CIDR]... [--push-rate N] "
		   "[--opencode-url URL [--poco-notify-window DURATION]]",
	  .summary = "run the server (PocketBase API, watch, apply) and the reconcile engine",
	  .options = serve_opts, .env = serve_env },
	{ .name = "restart", .fn = cmd_restart, .flags = CLI_CONN,
	  .usage = "restart NAME [--wait [--timeout DURATION]]",
	  .summary = "ask the server to restart a managed container",
	  .options = restart_opts },
	{ .name = "logs", .fn = cmd_logs, .flags = CLI_CONN,
	  .usage = "logs CONTAINER [-f] [--tail N]",
	  .summary = "print a managed container's log through the server",
	  .options = logs_opts },
	{ .name = "watch", .fn = cmd_watch,
	  .flags = CLI_CONN | CLI_OUTPUT | CLI_O_TERSE, .formats = "text|json",
	  .usage = "watch [KIND...] [-l SELECTOR] [--since REV] [--status] [--timeout DURATION] [-o text|json] [--show-secrets]",
	  .summary = "follow the server's changes: a timestamped line per change with the fields changed",
	  .options = watch_opts },
	{ .name = "ledger", .fn = cmd_ledger, .flags = CLI_CONN | CLI_OUTPUT,
	  .formats = "text|json",
	  .usage = "ledger verify [-o text|json]",
	  .summary = "check the governance ledger's hash chain (exit 1 when tampered)" },
	{ .name = "status", .fn = cmd_status, .flags = CLI_CONN | CLI_OUTPUT,
	  .formats = "text=table|json",
	  .usage = "status [NAME] [-o text|json]",
	  .summary = "show the reconcilers' conditions (exit 3 when one shown is Degraded)" },
	{ .name = "reconcile", .fn = cmd_reconcile,
	  .flags = CLI_CONN | CLI_OUTPUT, .formats = "text=table|json",
	  .usage = "reconcile [--wait [--timeout DURATION]] [-o text|json]",
	  .summary = "ask the engine for a full pass, and wait for it to converge",
	  .options = reconcile_opts },
	{ .name = "backup", .fn = cmd_backup, .flags = CLI_CONN | CLI_OUTPUT,
	  .formats = "text|json",
	  .usage = "backup [--to FILE] [-o text|json]",
	  .summary = "write an online, consistent copy of the store",
	  .options = backup_opts },
	{ .name = "restore", .fn = cmd_restore,
	  .usage = "restore FILE",
	  .summary = "replace the data directory's store with a backup (no server running)" },
	{ .name = "superuser", .fn = cmd_superuser, .flags = CLI_CONN | CLI_WRITES,
	  .usage = "superuser upsert EMAIL [--password-stdin]",
	  .summary = "create a superuser, or set the password of the one with that e-mail",
	  .options = superuser_opts, .env = account_env },
	{ .name = "user", .fn = cmd_user, .flags = CLI_CONN | CLI_WRITES,
	  .usage = "user create|passwd EMAIL [--role admin|agent|user] [--password-stdin]",
	  .summary = "create an app account, or set its password (and role)",
	  .options = user_opts, .env = account_env },
	{ .name = "completion", .fn = cmd_completion, .flags = CLI_HIDDEN,
	  .usage = "completion bash|zsh",
	  .summary = "print the shell completion script (make install installs it)" },
	{ .name = "version", .fn = cmd_version,
	  .usage = "version",
	  .summary = "print the version (also --version)" },
	{ .name = "help", .fn = cmd_help, .flags = CLI_OUTPUT, .formats = "text|json",
	  .usage = "help [COMMAND] [-o text|json]",
	  .summary = "print the usage of every command, or one command's options; -o json: the whole table" },
	{ .name = NULL },
};

const struct cli_option cli_global_options[] = {
	{ "--data", NULL, "DIR", "the data directory (default $POCKETCTL_DATA, else ./pocket-data; commands that reach a server also try /var/lib/pocketctl)" },
	{ "--server", NULL, "URL", "talk to the server at URL (default $POCKETCTL_SERVER, else DIR/server.json)" },
	{ "--token", NULL, "TOKEN", "the auth token (default $POCKETCTL_TOKEN, else DIR/cli.token)" },
	{ "--offline", NULL, NULL, "work on the data directory directly (refused while a server runs)" },
	{ "--version", NULL, NULL, "print the version and exit" },
	{ NULL, NULL, NULL, NULL },
};

const struct cli_envvar cli_global_env[] = {
	{ "POCKETCTL_DATA", "the data directory when --data is not given" },
	{ "POCKETCTL_SERVER", "the server's URL when --server is not given" },
	{ "POCKETCTL_TOKEN", "the auth token when --token is not given" },
	{ "POCKETCTL_TIMEOUT", "the client's timeout of one request, in seconds (default 300)" },
	{ "POCKETCTL_SECRET_KEY_FILE", "offline: the key file of the secrets at rest" },
	{ "NO_PROXY", "hosts reached without a proxy (loopback always is)" },
	{ NULL, NULL },
};

const struct cli_exit_code cli_exit_codes[] = {
	{ CLI_OK, "ok (converged, for --wait)" },
	{ CLI_DIFF, "differences found (diff), or a tampered ledger (ledger verify)" },
	{ CLI_ERROR, "error: bad usage or input, a failure, the server unreachable, a write error on standard output" },
	{ CLI_DEGRADED, "Degraded: status (a reconciler shown), reconcile --wait, restart (--wait)" },
	{ CLI_TIMEOUT, "timed out: reconcile --wait, restart --wait, watch --timeout" },
	{ -1, NULL },
};

const struct cli_command *cli_command_find(const char *name)
{
	const struct cli_command *c;

	for (c = cli_commands; c->name; c++)
		if (!strcmp(name, c->name))
			return c;
	return NULL;
}

/* ---- printing ------------------------------------------------------------ */

static void print_option(FILE *f, const char *alias, const char *name,
			 const char *arg, const char *help)
{
	int n;

	n = fprintf(f, "  %s%s%s%s%s", alias ? alias : "", alias ? ", " : "",
		    name, arg ? " " : "", arg ? arg : "");
	if (n < 0)
		return;
	if (n >= HELP_COL)
		fprintf(f, "\n%*s", HELP_COL, "");
	else
		fprintf(f, "%*s", HELP_COL - n, "");
	fprintf(f, "%s\n", help);
}

static void print_exit_codes(FILE *f)
{
	const struct cli_exit_code *x;

	fprintf(f, "\nexit codes:\n");
	for (x = cli_exit_codes; x->meaning; x++)
		fprintf(f, "  %d  %s\n", x->code, x->meaning);
}

void cli_help_print(FILE *f, const struct cli_command *c)
{
	const struct cli_option *o;
	const struct cli_envvar *v;
	char help[160];

	fprintf(f, "usage: pocketctl %s\n\n%s\n\noptions:\n", c->usage, c->summary);
	for (o = c->options; o && o->name; o++)
		print_option(f, o->alias, o->name, o->arg, o->help);
	if (c->flags & CLI_OUTPUT) {
		snprintf(help, sizeof(help), "output format: %.*s (default %.*s)",
			 (int)strlen(c->formats), c->formats,
			 (int)strcspn(c->formats, "|="), c->formats);
		print_option(f, "-o", "--output", "FORMAT", help);
	}
	print_option(f, "-h", "--help", NULL, "print this help and exit");
	if (c->flags & CLI_CONN) {
		fprintf(f, "\nglobal options (anywhere on the line):\n");
		for (o = cli_global_options; o->name; o++)
			print_option(f, o->alias, o->name, o->arg, o->help);
	}
	if (c->env) {
		fprintf(f, "\nenvironment:\n");
		for (v = c->env; v->name; v++)
			print_option(f, NULL, v->name, NULL, v->help);
	}
	print_exit_codes(f);
}

static json_t *options_json(const struct cli_option *o)
{
	json_t *a = json_array();

	for (; a && o && o->name; o++)
		json_array_append_new(a, json_pack("{s:s, s:s?, s:s?, s:s}",
						   "name", o->name, "alias", o->alias,
						   "arg", o->arg, "help", o->help));
	return a;
}

static json_t *env_json(const struct cli_envvar *v)
{
	json_t *a = json_array();

	for (; a && v && v->name; v++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "name", v->name,
						   "help", v->help));
	return a;
}

/* The whole table as JSON: {version, commands: [{name, usage, summary,
 * connects, formats, options, env}], globalOptions, env, exitCodes}. */
static int print_table_json(void)
{
	const struct cli_command *c;
	const struct cli_exit_code *x;
	json_t *cmds = json_array(), *codes = json_array(), *all;
	char *text;

	for (c = cli_commands; cmds && c->name; c++)
		json_array_append_new(cmds, json_pack("{s:s, s:s, s:s, s:b, s:s?, s:o, s:o}",
						      "name", c->name, "usage", c->usage,
						      "summary", c->summary,
						      "connects", (c->flags & CLI_CONN) != 0,
						      "formats", c->formats,
						      "options", options_json(c->options),
						      "env", env_json(c->env)));
	for (x = cli_exit_codes; codes && x->meaning; x++)
		json_array_append_new(codes, json_pack("{s:i, s:s}", "code", x->code,
						       "meaning", x->meaning));
	all = json_pack("{s:s, s:o, s:o, s:o, s:o}", "version", POCKETCTL_VERSION,
			"commands", cmds, "globalOptions",
			options_json(cli_global_options), "env",
			env_json(cli_global_env), "exitCodes", codes);
	text = all ? json_dumps(all, JSON_INDENT(2)) : NULL;
	json_decref(all);
	if (!text) {
		fprintf(stderr, "pocketctl: out of memory\n");
		return CLI_ERROR;
	}
	printf("%s\n", text);
	free(text);
	return CLI_OK;
}

int cmd_version(struct cli *cli, int argc, char **argv)
{
	if (cli_operands("version", argc, argv) != argc)
		return cli_usage("version", "version takes no arguments");
	printf("pocketctl %s (schema version %d)\n", POCKETCTL_VERSION,
	       cli->schema->version);
	return CLI_OK;
}

int cmd_help(struct cli *cli, int argc, char **argv)
{
	const struct cli_command *c;
	const struct cli_option *o;
	const struct cli_envvar *v;
	int i = cli_operands("help", argc, argv);

	if (i < 0)
		return CLI_ERROR;
	if (argc - i > 1)
		return cli_usage("help", "help takes one command at most");
	if (!strcmp(cli->output, "json")) {
		if (i < argc)
			return cli_usage("help", "-o json prints the whole table; give no command");
		return print_table_json();
	}
	if (i < argc) {
		c = cli_command_find(argv[i]);
		if (!c) {
			fprintf(stderr, "pocketctl: unknown command '%s'\n"
				"Run 'pocketctl help' for usage.\n", argv[i]);
			return CLI_ERROR;
		}
		cli_help_print(stdout, c);
		return CLI_OK;
	}
	printf("usage: pocketctl [--data DIR] [--server URL] COMMAND [ARGS]\n\n"
	       "commands:\n");
	for (c = cli_commands; c->name; c++)
		if (!(c->flags & CLI_HIDDEN))
			print_option(stdout, NULL, c->name, NULL, c->summary);
	printf("\nglobal options (anywhere on the line):\n");
	for (o = cli_global_options; o->name; o++)
		print_option(stdout, o->alias, o->name, o->arg, o->help);
	print_option(stdout, "-h", "--help", NULL, "this help; COMMAND --help, help COMMAND: one command's");
	printf("\nenvironment:\n");
	for (v = cli_global_env; v->name; v++)
		print_option(stdout, NULL, v->name, NULL, v->help);
	printf("(serve --help lists the server's)\n");
	print_exit_codes(stdout);
	return CLI_OK;
}
