/*
 * cli.c - helpers shared by the pocketctl subcommands (see cli.h): the
 * connection options, choosing between a running server and the data
 * directory, and output helpers.
 *
 * The lock protocol with `pocketctl serve`: the server holds an exclusive
 * flock on DIR/lock for as long as it runs; an offline command holds a
 * shared one for as long as it works. A non-blocking shared lock therefore
 * fails exactly when a server runs, succeeds otherwise, and - once taken -
 * keeps a server from starting under an offline command.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "secrets.h"
#include "util.h"

#define SMALL_FILE_MAX ((size_t)64 << 10)
#define CLI_START_WAIT_MS 30000   /* for a starting server's server.json */
#define CLI_START_POLL_MS 100

const char *cli_default_data_dir(const struct cli_command *cmd)
{
	const char *sys = getenv("POCKETCTL_SYSTEM_DATA");
	char *path;
	struct stat st;
	int fd;

	if (!cmd || !(cmd->flags & CLI_CONN) || stat(CLI_DATA_LOCAL, &st) == 0)
		return CLI_DATA_LOCAL;
	if (!sys || !*sys)
		sys = CLI_DATA_SYSTEM;
	path = path_join(sys, CLI_SERVER_FILE);
	fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	free(path);
	if (fd < 0)
		return CLI_DATA_LOCAL;
	close(fd);
	return sys;
}

int cli_take_conn_opts(struct cli *cli, const char *cmd, int argc,
		       char **argv)
{
	int i, j = 1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			while (i < argc)
				argv[j++] = argv[i++];
			break;
		}
		if (!strcmp(a, "--offline")) {
			cli->offline = true;
			continue;
		}
		if (!strcmp(a, "--token")) {
			if (i + 1 >= argc) {
				cli_usage(cmd, "--token needs a value");
				return -1;
			}
			cli->token = argv[++i];
			continue;
		}
		if (!strncmp(a, "--token=", 8)) {
			cli->token = a + 8;
			continue;
		}
		argv[j++] = argv[i];
	}
	argv[j] = NULL;
	return j;
}

/*
 * The canonical name of format v in formats ("text=table|json": table is
 * text), copied into out; 0 when v is one of them, -1 otherwise.
 */
static int find_format(const char *formats, const char *v, char *out,
		       size_t n)
{
	const char *p = formats, *name = formats;
	size_t len, vlen = strlen(v);

	while (*p) {
		len = strcspn(p, "|=");
		if (len == vlen && !strncmp(p, v, len)) {
			snprintf(out, n, "%.*s", (int)strcspn(name, "|="), name);
			return 0;
		}
		p += len;
		if (*p == '|')
			name = p + 1;
		if (*p)
			p++;
	}
	return -1;
}

/* The formats as words: "text or json", "table, json or yaml". */
static void format_words(const char *formats, char *out, size_t n)
{
	const char *p = formats;
	size_t len, used = 0, left = 0;

	for (; *p; p++)
		left += *p == '|';
	out[0] = '\0';
	for (p = formats; *p && used < n; left--) {
		len = strcspn(p, "|=");
		used += (size_t)snprintf(out + used, n - used, "%.*s%s",
					 (int)len, p, left > 1 ? ", " :
					 left == 1 ? " or " : "");
		p += strcspn(p, "|");
		if (*p)
			p++;
	}
}

int cli_take_output(struct cli *cli, int argc, char **argv)
{
	const char *cmd = cli->cmd->name, *formats = cli->cmd->formats;
	bool terse = cli->cmd->flags & CLI_O_TERSE;
	char words[128];
	int i, j = 1;

	format_words(formats, words, sizeof(words));
	snprintf(cli->output, sizeof(cli->output), "%.*s",
		 (int)strcspn(formats, "|="), formats);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;

		if (!strcmp(a, "--")) {
			while (i < argc)
				argv[j++] = argv[i++];
			break;
		}
		if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (i + 1 >= argc) {
				if (terse)
					cli_usage(cmd, "%s needs a value", a);
				else
					cli_usage(cmd, "unknown or incomplete option '%s'", a);
				return -1;
			}
			v = argv[++i];
		} else if (!strncmp(a, "-o", 2) && a[2]) {
			v = a + 2 + (a[2] == '=');
		} else if (!strncmp(a, "--output=", 9)) {
			v = a + 9;
		} else {
			argv[j++] = argv[i];
			continue;
		}
		if (strchr(v, '=') && (size_t)(strchr(v, '=') - v) < sizeof(words)) {
			/* FORMAT=ARG: -o jsonpath='{.kind}' */
			char fmt[sizeof(words)];

			snprintf(fmt, sizeof(fmt), "%.*s",
				 (int)(strchr(v, '=') - v), v);
			if (!find_format(formats, fmt, cli->output,
					 sizeof(cli->output))) {
				cli->output_arg = strchr(v, '=') + 1;
				continue;
			}
		}
		if (find_format(formats, v, cli->output, sizeof(cli->output))) {
			if (terse)
				cli_usage(cmd, "-o takes %s, not '%s'", words, v);
			else
				cli_usage(cmd, "unknown output format '%s' (%s)", v,
					  words);
			return -1;
		}
	}
	argv[j] = NULL;
	return j;
}

int cli_operands(const char *cmd, int argc, char **argv)
{
	static const struct option none[] = {
		{ NULL, 0, NULL, 0 },
	};

	optind = 1;
	opterr = 0;
	if (getopt_long(argc, argv, "", none, NULL) != -1) {
		cli_usage(cmd, "unknown or incomplete option '%s'",
			  argv[optind - 1]);
		return -1;
	}
	return optind;
}

int cli_open_store(const struct cli *cli, bool read_only, struct store **out,
		   struct err *e)
{
	struct store_options o;

	memset(&o, 0, sizeof(o));
	o.dir = cli->data_dir;
	o.read_only = read_only;
	/* Offline, the key of the secrets at rest is where serve has it. */
	o.key_file = getenv("POCKETCTL_SECRET_KEY_FILE");
	if (o.key_file && !*o.key_file)
		o.key_file = NULL;
	if (!read_only)
		cli_name_writer();
	return store_open(out, cli->schema, &o, e);
}

/*
 * The change log names an offline command's writes "cli:USER", USER the
 * operating-system user who ran it (its uid when it has no name): the
 * only identity an offline command has.
 */
void cli_name_writer(void)
{
	char label[STORE_WRITER_MAX];
	struct passwd pw, *res = NULL;
	char pwbuf[1024];

	if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) || !res)
		snprintf(label, sizeof(label), "cli:%lu",
			 (unsigned long)geteuid());
	else
		snprintf(label, sizeof(label), "cli:%s", res->pw_name);
	store_set_thread_writer(label);
}

/*
 * Take a shared, non-blocking flock on DIR/lock. Returns 1 when a server
 * holds the directory, 0 otherwise; *fd receives our locked descriptor, or
 * -1 when there is nothing to lock (no directory yet, no permission: the
 * store reports those itself).
 */
static int probe_lock(const char *dir, int *fd)
{
	char *path = path_join(dir, CLI_LOCK_FILE);
	int f, rc;

	*fd = -1;
	if (!path)
		return 0;
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f < 0 && (errno == EACCES || errno == EROFS))
		f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(path);
	if (f < 0)
		return 0;
	do {
		rc = flock(f, LOCK_SH | LOCK_NB);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0 && errno == EWOULDBLOCK) {
		close(f);
		return 1;
	}
	if (rc < 0) {
		close(f);   /* e.g. no locks on this file system: go on */
		return 0;
	}
	*fd = f;
	return 0;
}

/* Read DIR/NAME (small) into b. */
static int read_small(const char *dir, const char *name, struct buf *b,
		      struct err *e)
{
	char *path = path_join(dir, name);
	int rc;

	if (!path)
		return err_set(e, ERR_NOMEM, "out of memory");
	buf_init(b, SMALL_FILE_MAX);
	rc = buf_read_file(b, path, e);
	free(path);
	return rc;
}

/* The URL in DIR/server.json; caller frees. NULL with e set on error. */
static char *server_json_url(const char *dir, long long *pid, struct err *e)
{
	struct buf b;
	json_t *root = NULL, *url;
	char *out = NULL;

	*pid = 0;
	if (read_small(dir, CLI_SERVER_FILE, &b, e))
		goto out;
	root = json_loadb(b.ptr, b.len, 0, NULL);
	url = json_object_get(root, "url");
	if (!json_is_string(url) || !json_string_length(url)) {
		err_set(e, ERR_INVALID, "'%s/%s' holds no \"url\"", dir,
			CLI_SERVER_FILE);
		goto out;
	}
	if (json_is_integer(json_object_get(root, "pid")))
		*pid = json_integer_value(json_object_get(root, "pid"));
	out = strdup(json_string_value(url));
	if (!out)
		err_set(e, ERR_NOMEM, "out of memory");
out:
	json_decref(root);
	buf_release(&b);
	return out;
}

/* a and b name the same server (trailing slashes ignored). */
static bool same_url(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);

	while (na && a[na - 1] == '/')
		na--;
	while (nb && b[nb - 1] == '/')
		nb--;
	return na == nb && !strncasecmp(a, b, na);
}

/* DIR/cli.token with surrounding whitespace trimmed, or NULL. */
static char *read_token_file(const char *dir)
{
	struct buf b;
	struct err ignore = ERR_INIT;
	char *s, *end, *out = NULL;

	if (read_small(dir, CLI_TOKEN_FILE, &b, &ignore))
		goto out;
	s = b.ptr;
	while (*s && isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (*s)
		out = strdup(s);
out:
	if (b.len)
		memset(b.ptr, 0, b.len);
	buf_release(&b);
	return out;
}

char *cli_local_url(const struct cli *cli)
{
	struct err ignore = ERR_INIT;
	long long pid;

	return server_json_url(cli->data_dir, &pid, &ignore);
}

char *cli_token_file(const struct cli *cli)
{
	return read_token_file(cli->data_dir);
}

/* $POCKETCTL_TIMEOUT (seconds) as milliseconds, 0 when unset. */
static int env_timeout(long *ms, struct err *e)
{
	const char *v = getenv("POCKETCTL_TIMEOUT");
	char *end;
	long s;

	*ms = 0;
	if (!v || !*v)
		return 0;
	errno = 0;
	s = strtol(v, &end, 10);
	if (errno || *end || s <= 0 || s > 86400)
		return err_set(e, ERR_INVALID,
			       "POCKETCTL_TIMEOUT must be a number of seconds (1 to 86400), not '%.32s'",
			       v);
	*ms = s * 1000;
	return 0;
}

static int connect_http(const struct cli *cli, const char *url,
			const char *local_url, struct cli_conn *out,
			struct err *e)
{
	struct client_options o;
	const char *env = getenv("POCKETCTL_TOKEN");
	char *file_token = NULL;
	const char *token = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	rc = env_timeout(&o.timeout_ms, e);
	if (rc)
		return rc;
	if (o.timeout_ms && o.timeout_ms < CLIENT_CONNECT_TIMEOUT_MS)
		o.connect_timeout_ms = o.timeout_ms;
	if (cli->token) {
		token = cli->token;
		out->token_source = strdup("the token given with --token");
	} else if (env && *env) {
		token = env;
		out->token_source = strdup("the token in $POCKETCTL_TOKEN");
	} else if (local_url && same_url(url, local_url)) {
		file_token = read_token_file(cli->data_dir);
		token = file_token;
		if (asprintf(&out->token_source, file_token ?
			     "the token in '%s/" CLI_TOKEN_FILE "'" :
			     "no token ('%s/" CLI_TOKEN_FILE "' is missing or unreadable)",
			     cli->data_dir) < 0)
			out->token_source = NULL;
	} else {
		out->token_source = strdup("no token");
	}
	if (!out->token_source) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	o.url = url;
	o.token = token;
	rc = client_new(&out->http, &o, e);
out:
	if (file_token) {
		memset(file_token, 0, strlen(file_token));
		free(file_token);
	}
	return rc;
}

/* Does process pid exist (a process of another user counts)? */
static bool pid_alive(long long pid)
{
	return pid > 0 && pid <= INT_MAX &&
	       (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/*
 * DIR/server.json names url and pid, but no server holds DIR/lock. Going
 * offline in silence would let a script believe its writes reached a
 * server (and the app watching it); so it is an error, unless --offline
 * says that the data directory itself is meant: then a warning.
 */
static int stale_server(const struct cli *cli, const char *url,
			long long pid, struct err *e)
{
	if (cli->offline) {
		fprintf(stderr, "pocketctl: warning: '%s/" CLI_SERVER_FILE "' names pid %lld at %s but nothing answers (no process holds its lock); going offline as asked\n",
			cli->data_dir, pid, url);
		return 0;
	}
	return err_set(e, ERR_UNAVAILABLE,
		       "'%s/" CLI_SERVER_FILE "' names pid %lld at %s but nothing answers (no process holds '%s/" CLI_LOCK_FILE "'); remove it or start the server (or pass --offline to use the data directory itself)",
		       cli->data_dir, pid, url, cli->data_dir);
}

/* cli_connect() into out, the store opened for writing when write. */
static int connect_to(const struct cli *cli, bool write, struct cli_conn *out,
		      struct err *e)
{
	struct cli_conn c = CLI_CONN_INIT;
	char *local_url = NULL;
	long long pid = 0;
	struct err se = ERR_INIT;
	struct timespec poll = { 0, CLI_START_POLL_MS * 1000000L };
	int rc, held, waited;

	if (cli->server && cli->offline) {
		rc = err_set(e, ERR_INVALID,
			     "--offline and --server (or $POCKETCTL_SERVER) exclude each other");
		goto out;
	}
	if (cli->server) {
		/* Only to decide whether DIR/cli.token belongs to it. */
		local_url = server_json_url(cli->data_dir, &pid, &se);
		rc = connect_http(cli, cli->server, local_url, &c, e);
		goto out;
	}
	for (waited = 0;; waited += CLI_START_POLL_MS) {
		held = probe_lock(cli->data_dir, &c.lock_fd);
		if (!held)
			break;
		local_url = server_json_url(cli->data_dir, &pid, &se);
		if (local_url || cli->offline || waited >= CLI_START_WAIT_MS)
			break;
		/* A starting server holds the lock before it listens and
		 * writes server.json: give it time. */
		if (waited == 1000)
			fprintf(stderr, "pocketctl: waiting for the server on '%s' to start\n",
				cli->data_dir);
		nanosleep(&poll, NULL);
	}
	if (held) {
		if (cli->offline) {
			if (local_url)
				rc = err_set(e, ERR_CONFLICT,
					     "data directory '%s' is in use by a running pocketctl server (pid %lld, %s); --offline refused: stop the server, or drop --offline to go through it",
					     cli->data_dir, pid, local_url);
			else
				rc = err_set(e, ERR_CONFLICT,
					     "data directory '%s' is in use by a running pocketctl server; --offline refused: stop the server, or drop --offline to go through it",
					     cli->data_dir);
			goto out;
		}
		if (!local_url) {
			rc = err_set(e, ERR_UNAVAILABLE,
				     "data directory '%s' is locked by a running pocketctl server, but its address is still unknown after %d s (%s); pass --server URL",
				     cli->data_dir, CLI_START_WAIT_MS / 1000, se.msg);
			goto out;
		}
		rc = connect_http(cli, local_url, local_url, &c, e);
		goto out;
	}
	/* Nobody holds the lock: a server.json left behind names a server
	 * that died (SIGKILL, a crash, a power cut). */
	local_url = server_json_url(cli->data_dir, &pid, &se);
	if (local_url && c.lock_fd < 0 && pid_alive(pid)) {
		/* No locks on this file system: the pid is all we know. */
		rc = connect_http(cli, local_url, local_url, &c, e);
		goto out;
	}
	if (local_url) {
		rc = stale_server(cli, local_url, pid, e);
		if (rc)
			goto out;
	}
	rc = cli_open_store(cli, !write, &c.store, e);
out:
	free(local_url);
	if (rc)
		cli_disconnect(&c);   /* leaves c disconnected */
	*out = c;
	return rc;
}

int cli_connect(struct cli *cli, struct err *e)
{
	bool write = cli->cmd && (cli->cmd->flags & CLI_WRITES);

	if (cli->conn.http || cli->conn.store)
		return 0;
	return connect_to(cli, write, &cli->conn, e);
}

void cli_disconnect(struct cli_conn *c)
{
	if (!c)
		return;
	client_free(c->http);
	store_close(c->store);
	if (c->lock_fd >= 0)
		close(c->lock_fd);   /* drops the flock */
	free(c->token_source);
	c->http = NULL;
	c->store = NULL;
	c->lock_fd = -1;
	c->token_source = NULL;
}

int cli_http(struct cli_conn *c, const char *method, const char *path,
	     const char *content_type, const char *body, size_t len,
	     json_t **reply, struct err *e)
{
	int rc = client_call(c->http, method, path, content_type, body, len,
			     reply, e);

	/* A refused cli.token means the server no longer knows it (its
	 * secret.key or CLI account changed under it): a restart of the
	 * server writes a new one. */
	bool file = c->token_source && strstr(c->token_source, CLI_TOKEN_FILE);

	if (rc == ERR_UNAUTHORIZED || rc == ERR_FORBIDDEN)
		err_prefix(e, "pocketctl server at %s refused the request (HTTP %ld, using %s; %s): ",
			   client_url(c->http), client_last_status(c->http),
			   c->token_source ? c->token_source : "no token",
			   file && rc == ERR_UNAUTHORIZED ?
			   "restart the server to have it write a new " CLI_TOKEN_FILE ", or pass --token or set POCKETCTL_TOKEN" :
			   "pass --token or set POCKETCTL_TOKEN");
	return rc;
}

int cli_fail(const struct err *e)
{
	fprintf(stderr, "pocketctl: %s\n",
		e && e->msg[0] ? e->msg : "unknown error");
	return CLI_ERROR;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	const struct cli_command *c = cli_command_find(cmd);

	fprintf(stderr, "pocketctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	/* The command's synopsis, unless the message is the usage itself. */
	if (c && strncmp(fmt, "usage:", 6))
		fprintf(stderr, "\nusage: pocketctl %s", c->usage);
	fprintf(stderr, "\nRun 'pocketctl help%s%s' for %s.\n", c ? " " : "",
		c ? cmd : "", c ? "its options" : "usage");
	return CLI_ERROR;
}

void cli_kind_lower(const struct collection *c, char *out, size_t n)
{
	size_t i;

	for (i = 0; c->kind[i] && i + 1 < n; i++)
		out[i] = (char)tolower((unsigned char)c->kind[i]);
	out[i] = '\0';
}

const char *cli_jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

void cli_item_kind(const struct cli *cli, json_t *item, char *out, size_t n)
{
	const struct collection *c =
		schema_find(cli->schema, cli_jstr(item, "collection"));
	const char *k = cli_jstr(item, "kind");
	size_t i;

	if (c) {
		cli_kind_lower(c, out, n);
		return;
	}
	if (!*k)
		k = "unknown";
	for (i = 0; k[i] && i + 1 < n; i++)
		out[i] = isalnum((unsigned char)k[i]) ?
				 (char)tolower((unsigned char)k[i]) : '_';
	out[i] = '\0';
}

int cli_mask_local(const struct cli *cli, const struct collection *coll,
		   json_t *v, struct err *e)
{
	struct auth_keys k;
	json_t *doc;
	size_t i;
	int rc;

	if (!cli->conn.store)
		return 0;
	rc = auth_keys_load_or_create(cli->data_dir, &k, e);
	if (!rc && !coll)
		rc = secrets_mask_result(&k, cli->schema, v, e);
	if (!rc && coll)
		json_array_foreach(v, i, doc) {
			rc = secrets_mask_doc(&k, coll, doc, e);
			if (rc)
				break;
		}
	auth_keys_wipe(&k);
	return rc;
}

int cli_take_flag(int argc, char **argv, const char *flag, bool *found)
{
	int i, j = 1;

	*found = false;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[j++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], flag))
			*found = true;
		else
			argv[j++] = argv[i];
	}
	if (argc > 0)
		argv[j] = NULL;
	return argc > 0 ? j : argc;
}

int cli_parse_duration(const char *s, bool bare_seconds, int64_t *ms)
{
	const int64_t max = (int64_t)366 * 86400 * 1000;
	int64_t total = 0, unit;
	char *end = NULL;
	long long v;

	if (!*s)
		return -1;
	while (*s) {
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno || v > max)
			return -1;
		switch (*end) {
		case 'h': unit = 3600 * 1000; break;
		case 'm': unit = 60 * 1000; break;
		case 's': unit = 1000; break;
		case '\0':                               /* bare seconds */
			if (!bare_seconds)
				return -1;
			unit = 1000;
			end--;
			break;
		default: return -1;
		}
		total += (int64_t)v * unit;
		if (total > max)
			return -1;
		s = end + 1;
	}
	if (total <= 0)
		return -1;
	*ms = total;
	return 0;
}

int cli_take_wait(const char *cmd, int argc, char **argv, struct cli_wait *w)
{
	static const struct option longopts[] = {
		{ "wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	w->wait = w->has_timeout = false;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'w') {
			w->wait = true;
		} else if (c == 't') {
			w->has_timeout = true;
			if (cli_parse_duration(optarg, true, &w->timeout_ms))
				return cli_usage(cmd, "--timeout needs a duration such as 90, 45s or 2m, not '%s'",
						 optarg), -1;
		} else {
			return cli_usage(cmd, "unknown or incomplete option '%s'",
					 argv[optind - 1]), -1;
		}
	}
	if (w->has_timeout && !w->wait)
		return cli_usage(cmd, "--timeout needs --wait"), -1;
	return optind;
}
