/*
 * cmd_account.c - accounts from the command line:
 *
 *   pocketctl superuser upsert EMAIL [--password-stdin]
 *   pocketctl user create EMAIL [--role admin|agent|user] [--password-stdin]
 *   pocketctl user passwd EMAIL [--role admin|agent|user] [--password-stdin]
 *
 * `superuser upsert` follows PocketBase's command of that name: the
 * superuser is created, or its password replaced when the email exists.
 * `user create` makes a verified users record (role "user" unless told);
 * `user passwd` replaces the password (and the role, with --role) of one
 * that exists. The password comes from two prompts on the terminal with
 * echo off, or from the first line of stdin with --password-stdin; it is
 * checked against the server's password policy (auth_password_check())
 * before anything is sent or written. A new password also gets a new
 * tokenKey, so every token issued before for the account stops working.
 *
 * Through a running server the records API does it with the CLI's
 * superuser token; offline the store is written directly, the password
 * bcrypt-hashed here (cost $POCKETCTL_BCRYPT_COST, else the default, 10).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "cli.h"
#include "util.h"

#define PASSWORD_LINE_MAX 1024   /* bytes read for one password line */

/* What one account command does. */
struct account_op {
	const char *cmd;          /* "superuser upsert", for messages */
	const char *collection;   /* "_superusers" or "users" */
	bool create, update;      /* allowed: create when absent, update when
	                           * present */
	const char *role;         /* users: the role to set, or NULL */
};

/* ---- reading the password --------------------------------------------- */

/* One line of f into out (n bytes), without its newline. -1 on end of file
 * before any byte, or a line longer than n - 1 bytes (*too_long set). */
static int read_line(FILE *f, char *out, size_t n, bool *too_long)
{
	size_t len;

	*too_long = false;
	if (!fgets(out, (int)n, f))
		return -1;
	len = strlen(out);
	if (len && out[len - 1] == '\n')
		out[--len] = '\0';
	else if (!feof(f)) {
		*too_long = true;
		return -1;
	}
	if (len && out[len - 1] == '\r')
		out[--len] = '\0';
	return 0;
}

/* Prompt on the terminal tty (read and write) with echo off. */
static int prompt_noecho(FILE *tty, const char *prompt, char *out, size_t n,
			 struct err *e)
{
	struct termios old, quiet;
	sigset_t block, prev;
	bool too_long;
	int rc, fd = fileno(tty);

	if (tcgetattr(fd, &old))
		return err_set(e, ERR_IO, "cannot read the terminal settings: %s",
			       strerror(errno));
	quiet = old;
	quiet.c_lflag &= (tcflag_t)~(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	/* Ctrl-C while echo is off must not leave the terminal mute: keep
	 * the signals back until the settings are restored. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGTSTP);
	sigprocmask(SIG_BLOCK, &block, &prev);
	/* Echo off before the prompt shows: a quick typist's answer must
	 * not be echoed. */
	if (tcsetattr(fd, TCSADRAIN, &quiet)) {
		sigprocmask(SIG_SETMASK, &prev, NULL);
		return err_set(e, ERR_IO, "cannot turn the terminal's echo off: %s",
			       strerror(errno));
	}
	fputs(prompt, tty);
	fflush(tty);
	rc = read_line(tty, out, n, &too_long);
	tcsetattr(fd, TCSADRAIN, &old);
	fputc('\n', tty);
	fflush(tty);
	sigprocmask(SIG_SETMASK, &prev, NULL);
	if (rc && too_long)
		return err_set(e, ERR_INVALID, "the password is longer than %d bytes",
			       PASSWORD_LINE_MAX - 2);
	if (rc)
		return err_set(e, ERR_INVALID, "no password given (end of input at the prompt)");
	return 0;
}

/*
 * The new password into pw (PASSWORD_LINE_MAX bytes): the first line of
 * stdin with from_stdin, else two prompts on the controlling terminal that
 * must agree. Then the password policy. Errors name what to do.
 */
static int read_password(const struct account_op *op, bool from_stdin,
			 char *pw, struct err *e)
{
	char again[PASSWORD_LINE_MAX];
	FILE *tty = NULL;
	bool too_long;
	int rc;

	if (from_stdin) {
		if (read_line(stdin, pw, PASSWORD_LINE_MAX, &too_long))
			return too_long ?
			       err_set(e, ERR_INVALID, "--password-stdin: the first line of stdin is longer than %d bytes",
				       PASSWORD_LINE_MAX - 2) :
			       err_set(e, ERR_INVALID, "--password-stdin: stdin is empty (give the password as its first line)");
		goto check;
	}
	if (isatty(STDIN_FILENO))
		tty = fopen("/dev/tty", "r+e");
	if (!tty)
		return err_set(e, ERR_INVALID,
			       "%s: no terminal to ask for the password on; pass --password-stdin and give the password as the first line of stdin",
			       op->cmd);
	rc = prompt_noecho(tty, "Password: ", pw, PASSWORD_LINE_MAX, e);
	if (!rc)
		rc = prompt_noecho(tty, "Confirm password: ", again,
				   sizeof(again), e);
	if (!rc && strcmp(pw, again))
		rc = err_set(e, ERR_INVALID, "the two passwords differ; nothing was changed");
	explicit_bzero(again, sizeof(again));
	fclose(tty);
	if (rc)
		return rc;
check:
	rc = auth_password_check(pw, e);
	if (rc)
		err_prefix(e, "password: ");
	return rc;
}

/* ---- through a running server ----------------------------------------- */

/* The id of the account with email in op->collection, into id ("" when
 * there is none), through the records API. */
static int remote_find(struct cli_conn *conn, const struct account_op *op,
		       const char *email, char *id, size_t n, struct err *e)
{
	struct buf filter = BUF_INIT, path = BUF_INIT;
	json_t *reply = NULL, *items;
	char *esc = NULL;
	int rc;

	id[0] = '\0';
	rc = buf_printf(&filter, "email=\"%s\"", email);
	if (!rc) {
		esc = client_escape(conn->http, filter.ptr);
		if (!esc)
			rc = err_set(e, ERR_NOMEM, "out of memory");
	}
	if (!rc)
		rc = buf_printf(&path, "/api/collections/%s/records?perPage=1&skipTotal=1&fields=id&filter=%s",
				op->collection, esc);
	if (rc) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = cli_http(conn, "GET", path.ptr, NULL, NULL, 0, &reply, e);
	if (rc)
		goto out;
	items = json_object_get(reply, "items");
	if (json_array_size(items))
		snprintf(id, n, "%s", cli_jstr(json_array_get(items, 0), "id"));
out:
	json_decref(reply);
	free(esc);
	buf_release(&filter);
	buf_release(&path);
	return rc;
}

/* Create (id "") or update account id with data, through the API. */
static int remote_write(struct cli_conn *conn, const struct account_op *op,
			const char *id, json_t *data, struct err *e)
{
	struct buf path = BUF_INIT;
	char *body = NULL;
	int rc;

	rc = *id ? buf_printf(&path, "/api/collections/%s/records/%s",
			      op->collection, id) :
		   buf_printf(&path, "/api/collections/%s/records",
			      op->collection);
	body = json_dumps(data, JSON_COMPACT);
	if (rc || !body) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = cli_http(conn, *id ? "PATCH" : "POST", path.ptr,
		      "application/json", body, strlen(body), NULL, e);
out:
	if (body) {
		explicit_bzero(body, strlen(body));
		free(body);
	}
	buf_release(&path);
	return rc;
}

/* Overwrite the password strings of d in place (the json values own
 * copies of them), before they are freed or replaced. */
static void wipe_passwords(json_t *d)
{
	const char *keys[] = { "password", "passwordConfirm" };
	json_t *v;
	size_t i;

	for (i = 0; i < 2; i++) {
		v = json_object_get(d, keys[i]);
		if (json_is_string(v))
			explicit_bzero((char *)json_string_value(v),
				       json_string_length(v));
	}
}

/* ---- offline ---------------------------------------------------------- */

static int copy_id(const struct record *r, void *arg)
{
	snprintf(arg, sizeof(r->id), "%s", r->id);
	return 1;
}

/* The id of the account with email (compared case-insensitively, as the
 * server does) in the store, into id ("" when there is none). */
static int local_find(struct store *s, const struct account_op *op,
		      const char *email, char *id, struct err *e)
{
	int rc;

	id[0] = '\0';
	rc = store_list_eq_nocase(s, op->collection, "email", email, 1,
				  copy_id, id, e);
	return rc == 1 ? 0 : rc;
}

/* The bcrypt cost offline: $POCKETCTL_BCRYPT_COST. */
static int local_cost(void)
{
	return (int)util_env_int("POCKETCTL_BCRYPT_COST",
				AUTH_BCRYPT_COST_DEFAULT,
				AUTH_BCRYPT_COST_MIN, AUTH_BCRYPT_COST_MAX);
}

/* Create (id "") or update account id in the store: data's password is
 * replaced by its hash and a fresh tokenKey is added. */
static int local_write(struct store *s, const struct account_op *op,
		       const char *id, json_t *data, struct err *e)
{
	char hash[AUTH_HASH_MAX], tk[AUTH_TOKEN_KEY_LEN + 1];
	const char *pw = json_string_value(json_object_get(data, "password"));
	struct store_txn *t = NULL;
	struct store_put p;
	int rc;

	rc = auth_password_hash(pw, local_cost(), hash, sizeof(hash), e);
	if (!rc)
		rc = auth_token_key_new(tk, e);
	if (rc)
		goto out;
	wipe_passwords(data);
	json_object_del(data, "passwordConfirm");
	/* json_string() copies; set_new steals the new strings. */
	if (json_object_set_new(data, "password", json_string(hash)) ||
	    json_object_set_new(data, "tokenKey", json_string(tk))) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	memset(&p, 0, sizeof(p));
	p.collection = op->collection;
	p.id = *id ? id : NULL;
	p.data = data;   /* borrowed by the store */
	p.partial = *id != '\0';
	p.mode = *id ? STORE_UPDATE : STORE_CREATE;
	rc = store_begin(s, &t, e);
	if (!rc)
		rc = store_txn_put(t, &p, NULL, NULL, e);
	if (!rc) {
		rc = store_commit(t, e);
		t = NULL;
	}
out:
	store_abort(t);
	explicit_bzero(hash, sizeof(hash));
	return rc;
}

/* ---- the command ------------------------------------------------------ */

/* The fields to write: password (+ confirm), and for users the role and,
 * on create, verified. Caller owns the result. */
static json_t *account_data(const struct account_op *op, const char *email,
			    const char *pw, bool create)
{
	json_t *d = json_pack("{s:s, s:s}", "password", pw, "passwordConfirm",
			      pw);

	if (d && create && json_object_set_new(d, "email", json_string(email)))
		goto fail;
	if (d && !strcmp(op->collection, "users")) {
		if (create && json_object_set_new(d, "verified", json_true()))
			goto fail;
		if ((create || op->role) &&
		    json_object_set_new(d, "role",
					json_string(op->role ? op->role : "user")))
			goto fail;
	}
	return d;
fail:
	json_decref(d);
	return NULL;
}


static int run_account(struct cli *cli, const struct account_op *op,
		       const char *email, bool from_stdin)
{
	struct err e = ERR_INIT;
	char pw[PASSWORD_LINE_MAX], id[64];
	json_t *data = NULL;
	bool create;
	int rc;

	/* The password first: a refused one costs no connection. */
	rc = read_password(op, from_stdin, pw, &e);
	if (!rc)
		rc = cli_connect(cli, &e);
	if (!rc)
		rc = cli->conn.store ?
		     local_find(cli->conn.store, op, email, id, &e) :
		     remote_find(&cli->conn, op, email, id, sizeof(id), &e);
	if (rc)
		goto out;
	create = !id[0];
	if (create && !op->create) {
		rc = err_set(&e, ERR_NOT_FOUND, "%s: no %s account has the email '%s' (pocketctl user create makes one)",
			     op->cmd, op->collection, email);
		goto out;
	}
	if (!create && !op->update) {
		rc = err_set(&e, ERR_CONFLICT, "%s: a %s account with the email '%s' exists already (pocketctl user passwd changes its password)",
			     op->cmd, op->collection, email);
		goto out;
	}
	data = account_data(op, email, pw, create);
	if (!data) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = cli->conn.store ? local_write(cli->conn.store, op, id, data, &e) :
			       remote_write(&cli->conn, op, id, data, &e);
	if (rc)
		goto out;
	printf("%s '%s' %s%s\n", !strcmp(op->collection, "users") ?
	       "user" : "superuser", email, create ? "created" : "password changed",
	       cli->conn.store ? " (offline)" : "");
out:
	explicit_bzero(pw, sizeof(pw));
	wipe_passwords(data);
	json_decref(data);
	if (rc)
		return cli_fail(&e);
	return CLI_OK;
}

/* Options of the account commands: --password-stdin and (users only)
 * --role ROLE / --role=ROLE; one EMAIL operand. */
static int account_args(const char *cmd, bool users, int argc, char **argv,
			bool *from_stdin, const char **role,
			const char **email)
{
	static const char *const roles[] = { "admin", "agent", "user", NULL };
	size_t k;
	int i;

	*from_stdin = false;
	*role = NULL;
	*email = NULL;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = NULL;

		if (!strcmp(a, "--password-stdin")) {
			*from_stdin = true;
			continue;
		}
		if (users && !strcmp(a, "--role")) {
			if (i + 1 >= argc)
				return cli_usage(cmd, "--role needs a value (admin, agent or user)");
			v = argv[++i];
		} else if (users && !strncmp(a, "--role=", 7)) {
			v = a + 7;
		} else if (a[0] == '-' && a[1]) {
			return cli_usage(cmd, "unknown or incomplete option '%s'", a);
		} else if (*email) {
			return cli_usage(cmd, "one EMAIL only, not also '%s'", a);
		} else {
			*email = a;
			continue;
		}
		for (k = 0; roles[k] && strcmp(roles[k], v); k++)
			;
		if (!roles[k])
			return cli_usage(cmd, "--role takes admin, agent or user, not '%s'", v);
		*role = roles[k];
	}
	if (!*email || !**email)
		return cli_usage(cmd, "an EMAIL is needed");
	/* Quotes and control bytes have no place in an email, and must not
	 * reach the filter the lookup sends. */
	for (i = 0; (*email)[i]; i++)
		if ((unsigned char)(*email)[i] < 0x21 || (*email)[i] == '"' ||
		    (*email)[i] == '\\' || (*email)[i] == 0x7f)
			return cli_usage(cmd, "'%s' is not an email address", *email);
	if (!strchr(*email, '@'))
		return cli_usage(cmd, "'%s' is not an email address", *email);
	return 0;
}

int cmd_superuser(struct cli *cli, int argc, char **argv)
{
	struct account_op op = { "superuser upsert", "_superusers", true,
				 true, NULL };
	const char *role, *email;
	bool from_stdin;

	if (argc >= 2 && argv[1][0] == '-')
		return cli_usage("superuser", "unknown or incomplete option '%s' (the action comes first: superuser upsert EMAIL)",
				 argv[1]);
	if (argc < 2 || strcmp(argv[1], "upsert"))
		return cli_usage("superuser", "usage: pocketctl superuser upsert EMAIL [--password-stdin]");
	if (account_args(op.cmd, false, argc, argv, &from_stdin, &role, &email))
		return CLI_ERROR;
	return run_account(cli, &op, email, from_stdin);
}

int cmd_user(struct cli *cli, int argc, char **argv)
{
	struct account_op op = { NULL, "users", false, false, NULL };
	const char *email;
	bool from_stdin;

	if (argc >= 2 && !strcmp(argv[1], "create")) {
		op.cmd = "user create";
		op.create = true;
	} else if (argc >= 2 && !strcmp(argv[1], "passwd")) {
		op.cmd = "user passwd";
		op.update = true;
	} else if (argc >= 2 && argv[1][0] == '-') {
		return cli_usage("user", "unknown or incomplete option '%s' (the action comes first: user create|passwd EMAIL)",
				 argv[1]);
	} else {
		return cli_usage("user", "usage: pocketctl user create|passwd EMAIL [--role admin|agent|user] [--password-stdin]");
	}
	if (account_args(op.cmd, true, argc, argv, &from_stdin, &op.role,
			 &email))
		return CLI_ERROR;
	return run_account(cli, &op, email, from_stdin);
}
