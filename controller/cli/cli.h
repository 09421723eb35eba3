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
 *      meanwhile (two writers on one directory is what the lock forbids);
 *      but a DIR/server.json left there by a server that died (no lock
 *      held) is an error naming its pid and URL, so that a script never
 *      writes offline believing it went through the server.
 * --offline forces 3 (a dead server's server.json is then a warning) and
 * is refused while a server holds the directory.
 * The token is --token, else $POCKETCTL_TOKEN, else DIR/cli.token (written
 * 0600 by the server) - the last only when the URL is the one in
 * DIR/server.json, so a local superuser token never goes to another host.
 *
 * Exit codes (cli_exit_codes in commands.c, README.md's table): 0 ok,
 * 1 differences found (diff), 2 error (bad usage, bad input, failure,
 * server unreachable, a write error on stdout), 3 Degraded, 4 timeout.
 */
#ifndef POCKETCTL_CLI_H
#define POCKETCTL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "client.h"
#include "err.h"
#include "store/schema.h"
#include "store/store.h"

#define CLI_OK 0
#define CLI_DIFF 1
#define CLI_ERROR 2
#define CLI_DEGRADED 3               /* a reconciler (or container) Degraded */
#define CLI_TIMEOUT 4                /* --wait / --timeout ran out */

#define CLI_LOCK_FILE "lock"
#define CLI_SERVER_FILE "server.json"
#define CLI_TOKEN_FILE "cli.token"
#define CLI_DATA_LOCAL "./pocket-data"       /* the default data directory */
#define CLI_DATA_SYSTEM "/var/lib/pocketctl" /* the installed daemon's
                                              * (packaging/pocketctl.service) */

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

struct cli;

/*
 * The flags column of the command table: what main() does for a command
 * before and after calling it, so that no command repeats it.
 *   CLI_CONN    the command reaches the data (a server, or the data
 *               directory offline): main() takes --offline and --token out
 *               of its arguments, cli_connect() connects, and main()
 *               disconnects after the command returns;
 *   CLI_WRITES  cli_connect() opens the store for writing (a command that
 *               writes, or diff, which runs apply's transaction);
 *   CLI_OUTPUT  the command takes -o FORMAT (--output): main() takes it out
 *               of the arguments and checks it against the entry's formats;
 *   CLI_O_TERSE -o errors in watch's short words ("-o takes text or json,
 *               not 'x'", "-o needs a value");
 *   CLI_HIDDEN  left out of `pocketctl help` and of the completion's
 *               command list (completion itself: make install runs it).
 * Every command answers COMMAND --help (or -h) with its usage (main()).
 */
#define CLI_CONN 0x1u
#define CLI_WRITES 0x2u
#define CLI_OUTPUT 0x4u
#define CLI_O_TERSE 0x8u
#define CLI_HIDDEN 0x10u

/*
 * The help data of the command table: every option a command takes, with
 * its value's name and one line of help, and the environment variables it
 * reads. --help, `pocketctl help -o json`, and what is generated from that
 * (the man page, shell completion) all come from these rows, so an option
 * added to a command is added here once.
 */
struct cli_option {
	const char *name;            /* "--dry-run" */
	const char *alias;           /* "-f", or NULL */
	const char *arg;             /* the value's name ("PATH"), or NULL for
	                              * a flag */
	const char *help;            /* one line, lower-case, no period */
};

struct cli_envvar {
	const char *name;            /* "POCKETCTL_DATA" */
	const char *help;            /* one line */
};

/* One row of the command table (commands.c). Option and environment
 * lists end with a row whose name is NULL; either may be NULL for none.
 * -o FORMAT (from formats) and -h/--help are added by the help printer. */
struct cli_command {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	unsigned flags;              /* CLI_* above */
	const char *formats;         /* with CLI_OUTPUT: "text|json", the
	                              * first the default; "text=table" makes
	                              * table a quiet alias of text */
	const char *usage;           /* "get KIND [NAME] [-o table|json|yaml]" */
	const char *summary;         /* one line: what the command does */
	const struct cli_option *options;
	const struct cli_envvar *env;
};

/* A documented exit code (commands.c, and README.md's table). */
struct cli_exit_code {
	int code;
	const char *meaning;
};

/* The command table, the global options, the client's environment and
 * the exit codes, in commands.c; each list ends with a NULL name (a
 * NULL meaning). */
extern const struct cli_command cli_commands[];
extern const struct cli_option cli_global_options[];
extern const struct cli_envvar cli_global_env[];
extern const struct cli_exit_code cli_exit_codes[];

/* The row of command name, or NULL. */
const struct cli_command *cli_command_find(const char *name);

/* Print c's usage, summary, options (with -o and --help), environment and
 * exit codes to f. */
void cli_help_print(FILE *f, const struct cli_command *c);

struct cli {
	const char *data_dir;        /* --data, $POCKETCTL_DATA, else
	                              * cli_default_data_dir() */
	const char *server;          /* --server, $POCKETCTL_SERVER, or NULL */
	const char *token;           /* --token, or NULL ($POCKETCTL_TOKEN and
	                              * DIR/cli.token are read by cli_connect) */
	bool offline;                /* --offline */
	const struct schema *schema; /* borrowed */
	const struct cli_command *cmd; /* borrowed: the running command */
	const struct cli_command *commands; /* borrowed: the whole table */
	size_t ncommands;
	char output[16];             /* with CLI_OUTPUT: the -o format chosen
	                              * (an alias given as its name), or the
	                              * default */
	const char *output_arg;      /* -o jsonpath=TEMPLATE: the template
	                              * (borrowed from argv), else NULL */
	struct cli_conn conn;        /* after cli_connect(); main() releases it */
};

/*
 * The data directory of a command when neither --data nor $POCKETCTL_DATA
 * names one. For a command that reaches the data (CLI_CONN), so that the
 * CLI finds a running server from any directory:
 *   1. ./pocket-data when it exists (the developer's, and `make run`'s);
 *   2. the installed daemon's, $POCKETCTL_SYSTEM_DATA or else
 *      /var/lib/pocketctl, when its server.json is readable by us (a
 *      server runs there, or died there: cli_connect() then says so);
 *   3. ./pocket-data (created by the first write, as before).
 * Every other command (serve, restore, ...; cmd may be NULL) gets
 * ./pocket-data: a server or a restore never picks a directory by what
 * happens to exist. Never fails; the result is a constant or the
 * environment's (borrowed).
 */
const char *cli_default_data_dir(const struct cli_command *cmd);

/*
 * Take the connection options --offline, --token TOKEN and --token=TOKEN
 * out of argv (from argv[1] on, up to a "--"), setting them in cli.
 * Returns the new argc, or -1 after a usage message for cmd.
 */
int cli_take_conn_opts(struct cli *cli, const char *cmd, int argc,
		       char **argv);

/*
 * Decide where the command goes (see the top of this file) and connect
 * cli->conn: an HTTP client, or the store opened for writing when the
 * command's row has CLI_WRITES (read-only otherwise). Connects once; a
 * second call returns 0 at once. On error (a server holds the directory
 * and --offline was given, a held lock without a readable server.json, a
 * bad URL, a store that does not open) e says what and what to do, and
 * cli->conn is left disconnected. main() releases cli->conn with
 * cli_disconnect() after the command returns.
 */
int cli_connect(struct cli *cli, struct err *e);

/*
 * Take -o FORMAT, -oFORMAT, --output FORMAT and --output=FORMAT out of argv
 * (from argv[1] on, up to a "--") and set cli->output: the value checked
 * against cli->cmd->formats, or the first of them when none is given.
 * FORMAT=ARG (-o jsonpath={.kind}) is FORMAT with cli->output_arg ARG when
 * FORMAT is one of the formats.
 * Returns the new argc, or -1 after a usage message for the command.
 */
int cli_take_output(struct cli *cli, int argc, char **argv);

/*
 * For a command that takes no option of its own (only those main() takes
 * out): check that none is left, with getopt's rules ("--" ends options,
 * operands may stand anywhere and are moved to the end). Returns the index
 * of the first operand in argv, or -1 after a usage message for cmd
 * ("unknown or incomplete option '--x'").
 */
int cli_operands(const char *cmd, int argc, char **argv);

/* The URL in DIR/server.json (a server's address, written when it
 * listens), or NULL when there is none. Caller frees. */
char *cli_local_url(const struct cli *cli);

/* DIR/cli.token without surrounding whitespace, or NULL when missing or
 * unreadable. Caller clears and frees it. */
char *cli_token_file(const struct cli *cli);

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

/* Open the store in cli->data_dir directly (no lock, no server check);
 * read-write, this thread's writes are named cli_name_writer()'s way.
 * Caller owns *out (store_close). */
int cli_open_store(const struct cli *cli, bool read_only, struct store **out,
		   struct err *e);

/* Name this thread's store writes "cli:USER" in the change log (the
 * operating-system user; store_set_thread_writer()). */
void cli_name_writer(void);

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

/*
 * Mask secret fields (secrets.h) in what an offline command prints: when
 * cli->conn is the data directory itself, with that directory's
 * installation secret (DIR/secret.key, created as the server creates it,
 * so offline and server masks agree). v is an array of record or manifest
 * documents of coll, or, with coll NULL, an apply or diff result. Through
 * a server it does nothing: the server masked already, or was asked not
 * to (?showSecrets=true). Returns 0, or the error with e set.
 */
int cli_mask_local(const struct cli *cli, const struct collection *coll,
		   json_t *v, struct err *e);

/*
 * Take every FLAG (a no-value option such as "--show-secrets") out of argv
 * (from argv[1] on, up to a "--"). Returns the new argc; *found says
 * whether it was there.
 */
int cli_take_flag(int argc, char **argv, const char *flag, bool *found);

/* The string member key of o, or "" when absent or not a string. */
const char *cli_jstr(json_t *o, const char *key);

/* The subcommands, the functions of the command table (main.c); argv[0]
 * is the subcommand name, and what the row's flags ask for (the
 * connection options, -o) is already taken out of argv. cmd_serve() is
 * the server's (server/cmd_serve.c); the others are in cmd_*.c here. */
int cmd_apply(struct cli *cli, int argc, char **argv);
int cmd_diff(struct cli *cli, int argc, char **argv);
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_delete(struct cli *cli, int argc, char **argv);
int cmd_api_resources(struct cli *cli, int argc, char **argv);
int cmd_explain(struct cli *cli, int argc, char **argv);
int cmd_serve(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_reconcile(struct cli *cli, int argc, char **argv);
int cmd_watch(struct cli *cli, int argc, char **argv);
int cmd_restart(struct cli *cli, int argc, char **argv);
int cmd_ledger(struct cli *cli, int argc, char **argv);
int cmd_backup(struct cli *cli, int argc, char **argv);
int cmd_restore(struct cli *cli, int argc, char **argv);
int cmd_superuser(struct cli *cli, int argc, char **argv);   /* cmd_account.c */
int cmd_user(struct cli *cli, int argc, char **argv);        /* cmd_account.c */
int cmd_completion(struct cli *cli, int argc, char **argv);
int cmd_logs(struct cli *cli, int argc, char **argv);
int cmd_version(struct cli *cli, int argc, char **argv);
int cmd_help(struct cli *cli, int argc, char **argv);

/*
 * A duration: "45s", "2m", "1h30m" (whole numbers with h, m or s), and
 * with bare_seconds also "90" (seconds; a --timeout); more than 0 and at
 * most a year. Returns 0 with *ms set, -1 otherwise (*ms untouched).
 */
int cli_parse_duration(const char *s, bool bare_seconds, int64_t *ms);

/* --wait [--timeout DURATION] of reconcile and restart. */
struct cli_wait {
	bool wait;                   /* --wait */
	bool has_timeout;            /* --timeout was given */
	int64_t timeout_ms;          /* --timeout, else the caller's default */
};

/*
 * Parse argv (getopt's rules) for cmd, which takes --wait and --timeout
 * DURATION and no other option; w->timeout_ms holds the default on entry.
 * --timeout without --wait is refused. Returns the index of the first
 * operand, or -1 after a usage message.
 */
int cli_take_wait(const char *cmd, int argc, char **argv, struct cli_wait *w);

#endif
