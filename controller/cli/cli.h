/*
 * cli.h - what the pocketctl subcommands share: the global options, finding
 * the data (a running server over HTTP, or the data directory offline),
 * printing errors and results.
 *
 * Where apply, diff, get and delete go (cli_connect()):
 *   1. --server URL or $POCKETCTL_SERVER: always HTTP to that URL;
 *   2. otherwise, when a server holds the data directory (an exclusive
 *      flock on DIR/lock), HTTP to the URL in DIR/server.json (waiting up
 *      to 30 s for a starting server to write it);
 *   3. otherwise the data directory itself, under a shared flock on
 *      DIR/lock for the whole command, so no server can start on it
 *      meanwhile (two writers on one directory is what the lock forbids).
 * --offline forces 3 and is refused while a server holds the directory.
 * The token is --token, else $POCKETCTL_TOKEN, else DIR/cli.token (written
 * 0600 by the server) - the last only when the URL is the one in
 * DIR/server.json, so a local superuser token never goes to another host.
 *
 * Exit codes (documented in README.md): 0 ok, 1 differences found (diff),
 * 2 error (bad usage, bad input, failure, server unreachable).
 */
#ifndef POCKETCTL_CLI_H
#define POCKETCTL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "client.h"
#include "err.h"
#include "store/schema.h"
#include "store/store.h"

#define CLI_OK 0
#define CLI_DIFF 1
#define CLI_ERROR 2

#define CLI_LOCK_FILE "lock"
#define CLI_SERVER_FILE "server.json"
#define CLI_TOKEN_FILE "cli.token"

struct cli {
	const char *data_dir;        /* --data, $POCKETCTL_DATA, ./pocket-data */
	const char *server;          /* --server, $POCKETCTL_SERVER, or NULL */
	const char *token;           /* --token, or NULL ($POCKETCTL_TOKEN and
	                              * DIR/cli.token are read by cli_connect) */
	bool offline;                /* --offline */
	const struct schema *schema; /* borrowed */
};

/* Where a command's data is: exactly one of http and store is set after a
 * successful cli_connect(). */
struct cli_conn {
	struct client *http;         /* owned: talk to a server */
	struct store *store;         /* owned: the data directory, offline */
	int lock_fd;                 /* offline: our shared flock, or -1 */
	char *token_source;          /* owned: where the token came from, for
	                              * messages ("--token", ...) */
};

#define CLI_CONN_INIT { NULL, NULL, -1, NULL }

/*
 * Take the connection options --offline, --token TOKEN and --token=TOKEN
 * out of argv (from argv[1] on, up to a "--"), setting them in cli.
 * Returns the new argc, or -1 after a usage message for cmd.
 */
int cli_take_conn_opts(struct cli *cli, const char *cmd, int argc,
		       char **argv);

/*
 * Decide where the command goes (see the top of this file) and connect:
 * an HTTP client, or the store opened for writing when write (read-only
 * otherwise). On error (a server holds the directory and --offline was
 * given, a held lock without a readable server.json, a bad URL, a store
 * that does not open) e says what and what to do, and *out is left
 * disconnected. Caller releases *out with cli_disconnect().
 */
int cli_connect(const struct cli *cli, bool write, struct cli_conn *out,
		struct err *e);

/* Close the store or client and drop the lock. Accepts NULL. */
void cli_disconnect(struct cli_conn *c);

/*
 * client_call() on c->http, with 401/403 replies explained: the message
 * then says which server refused the request, the server's reason and
 * which token was used (and how to pass another).
 */
int cli_http(struct cli_conn *c, const char *method, const char *path,
	     const char *content_type, const char *body, size_t len,
	     json_t **reply, struct err *e);

/* Open the store in cli->data_dir directly (no lock, no server check).
 * Caller owns *out (store_close). */
int cli_open_store(const struct cli *cli, bool read_only, struct store **out,
		   struct err *e);

/* Print "pocketctl: MESSAGE" to stderr and return CLI_ERROR. */
int cli_fail(const struct err *e);

/* Print a usage error for cmd and return CLI_ERROR. */
int cli_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The lower-case kind used in output ("mcpserver/github"). */
void cli_kind_lower(const struct collection *c, char *out, size_t n);

/*
 * The lower-case kind of a result item {kind, collection, ...} from apply
 * or a server: from the schema when the collection is known, else from the
 * item's own "kind" (never fails; "unknown" at worst).
 */
void cli_item_kind(const struct cli *cli, json_t *item, char *out, size_t n);

/* The string member key of o, or "" when absent or not a string. */
const char *cli_jstr(json_t *o, const char *key);

/* The subcommands; argv[0] is the subcommand name. */
int cmd_apply(struct cli *cli, int argc, char **argv);
int cmd_diff(struct cli *cli, int argc, char **argv);
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_delete(struct cli *cli, int argc, char **argv);
int cmd_serve(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_reconcile(struct cli *cli, int argc, char **argv);
int cmd_watch(struct cli *cli, int argc, char **argv);
int cmd_restart(struct cli *cli, int argc, char **argv);
int cmd_ledger(struct cli *cli, int argc, char **argv);

#endif
