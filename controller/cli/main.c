/*
 * main.c - the pocketctl entry point: global options and the subcommand
 * table. Each subcommand lives in its own cmd_*.c file (serve's in
 * server/, the server's command-line face); the table's flags column says
 * what main() sets up for it once (see CLI_CONN in cli.h): --help, the
 * connection options and the connection's release, -o FORMAT.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store/schema.h"

#define POCKETCTL_VERSION "0.1.0"

static int cmd_version(struct cli *cli, int argc, char **argv);
static int cmd_help(struct cli *cli, int argc, char **argv);

static const struct cli_command commands[] = {
	{ "apply", cmd_apply, CLI_CONN | CLI_WRITES | CLI_OUTPUT, "text|json",
	  "apply -f PATH... [--dry-run] [--applyset NAME [--prune [--force]]] [-o text|json] [--show-secrets]" },
	{ "diff", cmd_diff, CLI_CONN | CLI_WRITES | CLI_OUTPUT, "text|json",
	  "diff -f PATH... [-l SELECTOR] [--applyset NAME [--prune]] [--show-secrets]" },
	{ "get", cmd_get, CLI_CONN | CLI_OUTPUT, "table|wide|name|json|yaml|record|jsonpath",
	  "get KIND[,KIND...]|all [NAME...] [-l SELECTOR] [-o table|wide|name|json|yaml|record|jsonpath=TEMPLATE] [--show-managed] [--show-secrets]" },
	{ "delete", cmd_delete, CLI_CONN | CLI_WRITES, NULL,
	  "delete KIND NAME... | KIND -l SELECTOR | -f PATH... [--ignore-not-found]" },
	{ "api-resources", cmd_api_resources, CLI_OUTPUT, "table|name|json",
	  "api-resources [-o table|name|json]" },
	{ "explain", cmd_explain, 0, NULL, "explain KIND[.FIELD]" },
	{ "serve", cmd_serve, 0, NULL,
	  "serve [--listen HOST:PORT] [--log-format text|json] [--root DIR] [--manifests DIR] [--watch [--applyset NAME]] "
	  "[--docker unix:///PATH|tcp://HOST:PORT] "
	  "[--workers N] [--max-conns-per-ip N] [--header-timeout SECONDS] "
	  "[--body-timeout SECONDS] [--max-streams N] [--max-body BYTES] "
	  "[--max-apply-body BYTES] [--token-ttl SECONDS] [--bcrypt-cost N] "
	  "[--rate-limit GROUP=N/SECONDS]... "
	  "[--backup-every DURATION [--backup-keep N]] [--cron-grace DURATION] "
	  "[--secret-key FILE] [--observability-url URL] "
	  "[--push-relay URL] [--push-relay-secret-file FILE] "
	  "[--push-allow CIDR]... [--push-rate N] "
	  "[--opencode-url URL [--poco-notify-window DURATION]]" },
	{ "restart", cmd_restart, CLI_CONN, NULL, "restart NAME" },
	{ "watch", cmd_watch, CLI_CONN | CLI_OUTPUT | CLI_O_TERSE, "text|json",
	  "watch [KIND...] [-l SELECTOR] [--since REV] [-o text|json] [--show-secrets] [--token TOKEN]" },
	{ "ledger", cmd_ledger, CLI_CONN | CLI_OUTPUT, "text|json",
	  "ledger verify [-o text|json]" },
	{ "status", cmd_status, CLI_CONN | CLI_OUTPUT, "text=table|json",
	  "status [NAME] [-o text|json]" },
	{ "reconcile", cmd_reconcile, CLI_CONN | CLI_OUTPUT, "text=table|json",
	  "reconcile [--wait [--timeout SECONDS]] [-o text|json]" },
	{ "backup", cmd_backup, CLI_CONN | CLI_OUTPUT, "text|json",
	  "backup [--to FILE] [-o text|json]" },
	{ "restore", cmd_restore, 0, NULL, "restore FILE" },
	{ "superuser", cmd_superuser, CLI_CONN | CLI_WRITES, NULL,
	  "superuser upsert EMAIL [--password-stdin]" },
	{ "user", cmd_user, CLI_CONN | CLI_WRITES, NULL,
	  "user create|passwd EMAIL [--role admin|agent|user] [--password-stdin]" },
	{ "version", cmd_version, 0, NULL, "version" },
	{ "completion", cmd_completion, CLI_HIDDEN, NULL, "completion bash|zsh" },
	{ "help", cmd_help, 0, NULL, "help [COMMAND]" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cli_command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

static int unknown_command(const char *name)
{
	fprintf(stderr, "pocketctl: unknown command '%s'\nRun 'pocketctl help' for usage.\n",
		name);
	return CLI_ERROR;
}

/* COMMAND --help: the command's usage, on stdout. */
static int command_help(const struct cli_command *c)
{
	printf("usage: pocketctl %s\n", c->usage);
	if (c->flags & CLI_CONN)
		printf("\nThe global options (--data, --server, --token, --offline) apply;\n"
		       "run 'pocketctl help' for them and the exit codes.\n");
	return CLI_OK;
}

/* Is --help or -h among the command's arguments (before a "--")? */
static bool wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

static int cmd_version(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("pocketctl %s (schema version %d)\n", POCKETCTL_VERSION,
	       cli->schema->version);
	return CLI_OK;
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
	const struct cli_command *c;
	size_t i;

	(void)cli;
	if (argc > 1) {
		c = find_command(argv[1]);
		return c ? command_help(c) : unknown_command(argv[1]);
	}
	printf("usage: pocketctl [--data DIR] [--server URL] COMMAND [ARGS]\n\n"
	       "commands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		if (!(commands[i].flags & CLI_HIDDEN))
			printf("  pocketctl %s\n", commands[i].usage);
	printf("\nglobal options:\n"
	       "  --data DIR     data directory (default $POCKETCTL_DATA, else ./pocket-data;\n"
	       "                 commands that reach a server also try /var/lib/pocketctl)\n"
	       "  --server URL   talk to a running server (default $POCKETCTL_SERVER)\n"
	       "  --token TOKEN  auth token (default $POCKETCTL_TOKEN, else DATA/cli.token)\n"
	       "  --offline      work on the data directory directly (refused while a server runs)\n"
	       "  COMMAND --help the usage of one command\n"
	       "\nexit codes: 0 ok, 1 differences found (diff), 2 error\n");
	return CLI_OK;
}

/*
 * The set-up the command's row asks for, the command, and the tear-down:
 * --help, the connection options, -o; then cli->conn is released.
 */
static int run_command(struct cli *cli, const struct cli_command *c,
		       int argc, char **argv)
{
	int rc;

	cli->cmd = c;
	if (wants_help(argc, argv))
		return command_help(c);
	if (c->flags & CLI_CONN)
		argc = cli_take_conn_opts(cli, c->name, argc, argv);
	if (argc >= 0 && (c->flags & CLI_OUTPUT))
		argc = cli_take_output(cli, argc, argv);
	if (argc < 0)
		return CLI_ERROR;
	rc = c->fn(cli, argc, argv);
	cli_disconnect(&cli->conn);
	return rc;
}

/*
 * Take the global options out of argv wherever they stand, so that
 * "pocketctl get --data d kind" and "pocketctl --data d get kind" both work.
 * Returns the new argc, or -1 after a usage message.
 */
static int take_globals(struct cli *cli, int argc, char **argv)
{
	int i, j = 0;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;
		const char *val = NULL;

		if (!strcmp(a, "--data") || !strcmp(a, "--server")) {
			dst = a[2] == 'd' ? &cli->data_dir : &cli->server;
			if (i + 1 >= argc) {
				fprintf(stderr, "pocketctl: %s needs a value\n", a);
				return -1;
			}
			val = argv[++i];
		} else if (!strncmp(a, "--data=", 7)) {
			dst = &cli->data_dir;
			val = a + 7;
		} else if (!strncmp(a, "--server=", 9)) {
			dst = &cli->server;
			val = a + 9;
		} else if (!strcmp(a, "--offline")) {
			cli->offline = true;
			continue;
		} else if (!strcmp(a, "--token") && i + 1 < argc) {
			cli->token = argv[++i];
			continue;
		} else if (!strncmp(a, "--token=", 8)) {
			cli->token = a + 8;
			continue;
		} else if (!strcmp(a, "--")) {
			while (i < argc)
				argv[j++] = argv[i++];
			break;
		}
		if (dst) {
			*dst = val;
			continue;
		}
		argv[j++] = argv[i];
	}
	argv[j] = NULL;
	return j;
}

int main(int argc, char **argv)
{
	struct cli cli;
	struct schema *schema = NULL;
	struct err e = ERR_INIT;
	const struct cli_command *c;
	const char *env;
	int rc;

	memset(&cli, 0, sizeof(cli));
	cli.conn.lock_fd = -1;
	env = getenv("POCKETCTL_DATA");
	cli.data_dir = env && *env ? env : NULL;   /* NULL: see below */
	env = getenv("POCKETCTL_SERVER");
	cli.server = env && *env ? env : NULL;
	argc = take_globals(&cli, argc - 1, argv + 1);
	argv++;
	if (argc < 0)
		return CLI_ERROR;
	if (argc == 0 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))
		argv[0] = (char *)"help", argc = argc ? argc : 1;
	if (schema_load_default(&schema, &e))
		return cli_fail(&e);
	cli.schema = schema;
	cli.commands = commands;
	cli.ncommands = NCOMMANDS;
	c = find_command(argv[0]);
	if (!cli.data_dir)
		cli.data_dir = cli_default_data_dir(c);
	rc = c ? run_command(&cli, c, argc, argv) : unknown_command(argv[0]);
	schema_free(schema);
	return rc;
}
