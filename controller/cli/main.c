/*
 * main.c - the pocketctl entry point: global options and the subcommand
 * table. Each subcommand lives in its own cmd_*.c file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store/schema.h"

#define POCKETCTL_VERSION "0.1.0"

struct command {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *usage;
};

static int cmd_version(struct cli *cli, int argc, char **argv);
static int cmd_help(struct cli *cli, int argc, char **argv);

static const struct command commands[] = {
	{ "apply", cmd_apply,
	  "apply -f PATH... [--dry-run] [--applyset NAME [--prune [--force]]] [-o text|json]" },
	{ "diff", cmd_diff, "diff -f PATH... [--applyset NAME [--prune]]" },
	{ "get", cmd_get, "get KIND [NAME] [-o table|json|yaml]" },
	{ "delete", cmd_delete, "delete KIND NAME" },
	{ "serve", cmd_serve,
	  "serve [--listen 127.0.0.1:8090] [--root DIR] [--manifests DIR [--watch]]" },
	{ "restart", cmd_restart, "restart NAME" },
	{ "watch", cmd_watch,
	  "watch [KIND...] [--since REV] [-o text|json]" },
	{ "ledger", cmd_ledger, "ledger verify [-o text|json]" },
	{ "status", cmd_status, "status [NAME] [-o text|json]" },
	{ "reconcile", cmd_reconcile,
	  "reconcile [--wait [--timeout SECONDS]] [-o text|json]" },
	{ "version", cmd_version, "version" },
	{ "help", cmd_help, "help" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

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
	size_t i;

	(void)cli;
	(void)argc;
	(void)argv;
	printf("usage: pocketctl [--data DIR] [--server URL] COMMAND [ARGS]\n\n"
	       "commands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		printf("  pocketctl %s\n", commands[i].usage);
	printf("\nglobal options:\n"
	       "  --data DIR     data directory (default $POCKETCTL_DATA or ./pocket-data)\n"
	       "  --server URL   talk to a running server (default $POCKETCTL_SERVER)\n"
	       "  --token TOKEN  auth token (default $POCKETCTL_TOKEN, else DATA/cli.token)\n"
	       "  --offline      work on the data directory directly (refused while a server runs)\n"
	       "\nexit codes: 0 ok, 1 differences found (diff), 2 error\n");
	return CLI_OK;
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
	const char *env;
	size_t i;
	int rc = CLI_ERROR;

	memset(&cli, 0, sizeof(cli));
	env = getenv("POCKETCTL_DATA");
	cli.data_dir = env && *env ? env : "./pocket-data";
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
	for (i = 0; i < NCOMMANDS; i++) {
		if (!strcmp(argv[0], commands[i].name)) {
			rc = commands[i].fn(&cli, argc, argv);
			goto out;
		}
	}
	fprintf(stderr, "pocketctl: unknown command '%s'\nRun 'pocketctl help' for usage.\n",
		argv[0]);
out:
	schema_free(schema);
	return rc;
}
