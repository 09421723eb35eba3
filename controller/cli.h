/*
 * cli.h - what the pocketctl subcommands share: the global options, opening
 * the data directory, printing errors and results.
 *
 * Exit codes (documented in README.md): 0 ok, 1 differences found (diff),
 * 2 error (bad usage, bad input, failure).
 */
#ifndef POCKETCTL_CLI_H
#define POCKETCTL_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "err.h"
#include "schema.h"
#include "store.h"

#define CLI_OK 0
#define CLI_DIFF 1
#define CLI_ERROR 2

struct cli {
	const char *data_dir;        /* --data, $POCKETCTL_DATA, ./pocket-data */
	const char *server;          /* --server, $POCKETCTL_SERVER, or NULL */
	const struct schema *schema; /* borrowed */
};

/* Open the store in cli->data_dir. Caller owns *out (store_close). */
int cli_open_store(const struct cli *cli, bool read_only, struct store **out,
		   struct err *e);

/* Print "pocketctl: MESSAGE" to stderr and return CLI_ERROR. */
int cli_fail(const struct err *e);

/* Print a usage error for cmd and return CLI_ERROR. */
int cli_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Refuse --server until the commands can talk HTTP: returns CLI_ERROR
 * after a message, or 0 when no server was asked for. */
int cli_local_only(const struct cli *cli, const char *cmd);

/* The lower-case kind used in output ("mcpserver/github"). */
void cli_kind_lower(const struct collection *c, char *out, size_t n);

/* The subcommands; argv[0] is the subcommand name. */
int cmd_apply(struct cli *cli, int argc, char **argv);
int cmd_diff(struct cli *cli, int argc, char **argv);
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_delete(struct cli *cli, int argc, char **argv);

#endif
