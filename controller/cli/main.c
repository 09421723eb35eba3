/*
 * main.c - the pocketctl entry point: global options and the dispatch
 * through the command table (commands.c). Each subcommand lives in its own
 * cmd_*.c file (serve's in server/, the server's command-line face); the
 * table's flags column says what main() sets up for it once (see CLI_CONN
 * in cli.h): --help, the connection options and the connection's release,
 * -o FORMAT; and main() checks standard output once, at the end.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store/schema.h"

static int unknown_command(const char *name)
{
	fprintf(stderr, "pocketctl: unknown command '%s'\nRun 'pocketctl help' for usage.\n",
		name);
	return CLI_ERROR;
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

/*
 * The set-up the command's row asks for, the command, and the tear-down:
 * --help, the connection options, -o; then cli->conn is released.
 */
static int run_command(struct cli *cli, const struct cli_command *c,
		       int argc, char **argv)
{
	int rc;

	cli->cmd = c;
	if (wants_help(argc, argv)) {
		cli_help_print(stdout, c);
		return CLI_OK;
	}
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
 * Every command's output is checked here, once: a write error on standard
 * output (a full disk, `> /dev/full`, a closed pipe with SIGPIPE ignored)
 * turns any result into CLI_ERROR, so a script never takes a truncated
 * listing for a complete one.
 */
static int stdout_done(int rc)
{
	int err;

	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return rc;
	err = errno;
	fprintf(stderr, "pocketctl: cannot write to standard output%s%s\n",
		err ? ": " : "", err ? strerror(err) : "");
	return CLI_ERROR;
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
	else if (!strcmp(argv[0], "--version"))
		argv[0] = (char *)"version";
	if (schema_load_default(&schema, &e))
		return cli_fail(&e);
	cli.schema = schema;
	cli.commands = cli_commands;
	while (cli_commands[cli.ncommands].name)
		cli.ncommands++;
	c = cli_command_find(argv[0]);
	if (!cli.data_dir)
		cli.data_dir = cli_default_data_dir(c);
	rc = c ? run_command(&cli, c, argc, argv) : unknown_command(argv[0]);
	schema_free(schema);
	return stdout_done(rc);
}
