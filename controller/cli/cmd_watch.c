/*
 * cmd_watch.c - `pocketctl watch [KIND...] [--since REV] [-o text|json]`:
 * follow a running server's /api/v1/watch stream (see api_stream.h) and
 * print one line per change, "REV ACTION kind/name" (ACTION is create,
 * update, delete, or status for a reconciler's status report), or with
 * -o json the event data as the server sent it (one JSON object per line),
 * secret fields masked by the server unless --show-secrets is given (which
 * the server allows a superuser only).
 *
 * The stream is read with libcurl as it arrives and parsed as
 * Server-Sent Events. When the connection drops the command reconnects with
 * Last-Event-ID set to the last id it saw, so the server replays exactly
 * what was missed; a "reset" event (what was missed is no longer retained)
 * is reported on stderr. Without a server to talk to it exits 2.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "auth.h"
#include "buf.h"
#include "cli.h"
#include "protocol.h"
#include "selector.h"

#define WATCH_LINE_MAX ((size_t)64 << 20)   /* one SSE line (a record) */
#define WATCH_STALL_S 45L        /* three missed heartbeats: reconnect */
#define WATCH_CONNECT_S 5L
#define WATCH_BACKOFF_MIN_MS 200
#define WATCH_BACKOFF_MAX_MS 5000

static volatile sig_atomic_t watch_stop;

static void on_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

enum output { OUT_TEXT, OUT_JSON };

/* The state of one SSE parse, kept across reconnects (the last id). */
struct watch {
	const struct cli *cli;
	enum output output;
	struct buf line;         /* the line being received */
	struct buf data;         /* the event's data lines */
	char event[64];
	char id[32];             /* the event's id field */
	char last_id[32];        /* the last id dispatched: Last-Event-ID */
	bool connected;          /* the server answered 200 this attempt */
	bool ever_connected;
	long status;             /* HTTP status of this attempt */
	struct buf errbody;      /* a non-200 reply's body */
	int events;              /* events printed (for tests / messages) */
	struct selector *selector; /* -l: only records whose labels match */
};

/* Print one change in text form: "REV ACTION kind/name". */
static void print_text(struct watch *w, json_t *d)
{
	const struct collection *c;
	const char *coll = cli_jstr(d, "collection");
	const char *name = cli_jstr(d, "name");
	char kind[64];

	c = schema_find(w->cli->schema, coll);
	if (c)
		cli_kind_lower(c, kind, sizeof(kind));
	else
		snprintf(kind, sizeof(kind), "%s", *coll ? coll : "unknown");
	/* A reconciler's status report reads better as "status". */
	printf("%lld %s %s/%s\n",
	       (long long)json_integer_value(json_object_get(d, "revision")),
	       json_is_true(json_object_get(d, "statusOnly")) ? "status" :
							       cli_jstr(d, "action"),
	       kind, *name ? name : cli_jstr(d, "id"));
}

/* One complete event: print it, remember its id. */
static void dispatch(struct watch *w)
{
	json_t *d = NULL;

	if (w->id[0])
		memcpy(w->last_id, w->id, sizeof(w->last_id));
	if (!w->event[0] || !strcmp(w->event, "heartbeat"))
		goto out;
	if (!strcmp(w->event, "reset")) {
		d = json_loadb(w->data.ptr, w->data.len, 0, NULL);
		fprintf(stderr,
			"pocketctl: watch: reset to revision %lld: %s (changes "
			"in between were not retained; re-read the state with "
			"'pocketctl get')\n",
			(long long)json_integer_value(json_object_get(d, "revision")),
			cli_jstr(d, "reason"));
		if (w->output == OUT_JSON)
			printf("%s\n", w->data.ptr);
		goto out;
	}
	d = json_loadb(w->data.ptr, w->data.len, 0, NULL);
	if (w->selector && !selector_match(w->selector, json_object_get(
			json_object_get(d, "record"), "labels")))
		goto out;
	w->events++;
	if (w->output == OUT_JSON) {
		printf("%s\n", w->data.ptr);
		goto out;
	}
	if (json_is_object(d))
		print_text(w, d);
	else
		fprintf(stderr, "pocketctl: watch: event '%s' with data that "
			"is not a JSON object\n", w->event);
out:
	fflush(stdout);
	json_decref(d);
	buf_reset(&w->data);
	w->event[0] = '\0';
	w->id[0] = '\0';
}

/* One SSE line (without its line ending). */
static int sse_line(struct watch *w, char *line, size_t len)
{
	char *value;
	size_t vlen;

	if (len == 0) {
		dispatch(w);
		return 0;
	}
	if (line[0] == ':')
		return 0;   /* a comment */
	value = memchr(line, ':', len);
	if (value) {
		*value++ = '\0';
		if (*value == ' ')
			value++;
	} else {
		value = line + len;
	}
	vlen = strlen(value);
	if (!strcmp(line, "data")) {
		if ((w->data.len && buf_putc(&w->data, '\n')) ||
		    buf_add(&w->data, value, vlen))
			return -1;
	} else if (!strcmp(line, "event")) {
		snprintf(w->event, sizeof(w->event), "%s", value);
	} else if (!strcmp(line, "id")) {
		if (vlen < sizeof(w->id) && !memchr(value, '\0', vlen))
			memcpy(w->id, value, vlen + 1);
	}
	return 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct watch *w = arg;
	size_t n = size * nmemb, i, start = 0;

	if (!w->connected) {
		/* An error reply: keep its body for the message. */
		if (buf_add(&w->errbody, ptr, n))
			return 0;
		return n;
	}
	for (i = 0; i < n; i++) {
		if (ptr[i] != '\n')
			continue;
		if (buf_add(&w->line, ptr + start, i - start))
			return 0;
		if (w->line.len && w->line.ptr[w->line.len - 1] == '\r')
			w->line.ptr[--w->line.len] = '\0';
		if (sse_line(w, w->line.ptr, w->line.len))
			return 0;
		buf_reset(&w->line);
		start = i + 1;
	}
	if (start < n && buf_add(&w->line, ptr + start, n - start))
		return 0;   /* a line beyond WATCH_LINE_MAX: give up */
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct watch *w = arg;
	size_t n = size * nmemb;
	long status;

	if (n > 5 && !strncmp(ptr, "HTTP/", 5)) {
		status = strtol(ptr + 5 + strcspn(ptr + 5, " "), NULL, 10);
		w->status = status;
		w->connected = status == 200;
	}
	return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
		       curl_off_t un)
{
	(void)arg;
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return watch_stop ? 1 : 0;
}

/* The server's message from a PocketBase-shaped error body, or "". */
static const char *error_message(struct watch *w, char *out, size_t n)
{
	json_t *j = json_loadb(w->errbody.ptr, w->errbody.len, 0, NULL);

	snprintf(out, n, "%s", cli_jstr(j, "message"));
	json_decref(j);
	return out;
}

/* The token: --token, $POCKETCTL_TOKEN, or DIR/cli.token when the server
 * is the one of the data directory. Caller frees; NULL for none. */
static char *find_token(const struct cli *cli, bool local)
{
	const char *env = getenv("POCKETCTL_TOKEN");

	if (cli->token)
		return strdup(cli->token);
	if (env && *env)
		return strdup(env);
	return local ? cli_token_file(cli) : NULL;
}

/*
 * One connection: stream until it ends. Returns 0 when it ended (drop,
 * stall, server gone), 1 when the user stopped it, or CLI_ERROR after a
 * message for what reconnecting cannot fix.
 */
static int watch_once(struct watch *w, CURL *h, const char *url,
		      const char *token)
{
	struct curl_slist *hdrs = NULL;
	char line[256 + AUTH_TOKEN_MAX], msg[512];
	CURLcode cc;
	int rc = 0;

	w->connected = false;
	w->status = 0;
	buf_reset(&w->line);
	buf_reset(&w->data);
	buf_reset(&w->errbody);
	w->event[0] = w->id[0] = '\0';
	hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
	if (token) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (w->last_id[0]) {
		snprintf(line, sizeof(line), "Last-Event-ID: %s", w->last_id);
		hdrs = curl_slist_append(hdrs, line);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	if (watch_stop)
		return 1;
	if (w->status && w->status != 200) {
		error_message(w, msg, sizeof(msg));
		if (w->status == 503 && w->ever_connected)
			return 0;   /* too many streams right now: retry */
		fprintf(stderr, "pocketctl: watch: %s refused the stream "
			"(HTTP %ld)%s%s\n", url, w->status,
			msg[0] ? ": " : "", msg);
		return CLI_ERROR;
	}
	if (w->connected)
		w->ever_connected = true;
	if (cc != CURLE_OK && !w->ever_connected) {
		fprintf(stderr, "pocketctl: watch: no pocketctl server answers "
			"at %s (%s); start one with 'pocketctl serve' or pass "
			"--server URL\n", url, curl_easy_strerror(cc));
		return CLI_ERROR;
	}
	return rc;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (!watch_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int cmd_watch(struct cli *cli, int argc, char **argv)
{
	struct watch w;
	struct buf url = BUF_INIT, kinds = BUF_INIT;
	struct sigaction sa;
	const struct collection *c;
	char *base = NULL, *token = NULL, *fresh, *lurl = NULL, *end = NULL;
	CURL *h = NULL;
	int64_t backoff = WATCH_BACKOFF_MIN_MS;
	long long since = -1;
	bool show = false;
	int i, rc = CLI_ERROR;

	memset(&w, 0, sizeof(w));
	w.cli = cli;
	buf_init(&w.line, WATCH_LINE_MAX);
	buf_init(&w.data, WATCH_LINE_MAX);
	buf_init(&w.errbody, (size_t)1 << 20);
	w.output = !strcmp(cli->output, "json") ? OUT_JSON : OUT_TEXT;
	argc = cli_take_flag(argc, argv, "--show-secrets", &show);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;

		if (!strcmp(a, "--since")) {
			if (i + 1 >= argc) {
				rc = cli_usage("watch", "%s needs a value", a);
				goto out;
			}
			v = argv[++i];
		} else if (!strncmp(a, "--since=", 8)) {
			v = a + 8;
		}
		if (v) {
			errno = 0;
			since = strtoll(v, &end, 10);
			if (errno || end == v || *end || since < 0) {
				rc = cli_usage("watch", "--since needs a revision number, not '%s'", v);
				goto out;
			}
			continue;
		}
		if (!strcmp(a, "-l") || !strcmp(a, "--selector")) {
			struct err e = ERR_INIT;

			selector_free(w.selector);
			w.selector = NULL;
			if (i + 1 >= argc) {
				rc = cli_usage("watch", "%s needs a value", a);
				goto out;
			}
			if (selector_parse(argv[++i], &w.selector, &e)) {
				rc = cli_usage("watch", "%s", e.msg);
				goto out;
			}
			continue;
		}
		if (a[0] == '-') {
			rc = cli_usage("watch", "unknown option '%s'; usage: pocketctl %s",
				       a, cli->cmd->usage);
			goto out;
		}
		c = schema_find_kind_or_short(cli->schema, a);
		if (!c) {
			rc = cli_usage("watch", "unknown kind '%s'", a);
			goto out;
		}
		if ((kinds.len && buf_putc(&kinds, ',')) || buf_puts(&kinds, c->name))
			goto nomem;
	}
	if (cli->offline) {
		rc = cli_usage("watch", "watch follows a running server; --offline does not apply");
		goto out;
	}

	lurl = cli_local_url(cli);
	base = cli->server ? strdup(cli->server) : lurl ? strdup(lurl) : NULL;
	if (!base) {
		fprintf(stderr, "pocketctl: watch: no pocketctl server is running "
			"for data directory '%s' (no %s there); start one with "
			"'pocketctl serve', or pass --server URL\n",
			cli->data_dir, CLI_SERVER_FILE);
		goto out;
	}
	while (strlen(base) && base[strlen(base) - 1] == '/')
		base[strlen(base) - 1] = '\0';
	if (buf_printf(&url, "%s/api/v1/watch%s%s%s", base,
		       kinds.len ? "?collection=" : "",
		       kinds.len ? kinds.ptr : "",
		       !show ? "" : kinds.len ? "&" PROTO_SHOW_SECRETS "=true" :
		       "?" PROTO_SHOW_SECRETS "=true"))
		goto nomem;
	if (since >= 0 && snprintf(w.last_id, sizeof(w.last_id), "%lld", since) < 0)
		goto nomem;

	h = curl_easy_init();
	if (!h) {
		fprintf(stderr, "pocketctl: watch: cannot set up libcurl\n");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, WATCH_CONNECT_S);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, WATCH_STALL_S);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &w);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (;;) {
		bool was = w.ever_connected;

		/* A restarted local server issues a new CLI token: read it
		 * again for every connection (keeping the last one while the
		 * server is between its files). */
		free(lurl);
		lurl = cli_local_url(cli);
		fresh = find_token(cli, lurl && !strcasecmp(lurl, base));
		if (fresh) {
			if (token) {
				memset(token, 0, strlen(token));
				free(token);
			}
			token = fresh;
		}
		rc = watch_once(&w, h, url.ptr, token);
		if (rc == 1 || watch_stop) {
			rc = CLI_OK;
			break;
		}
		if (rc == CLI_ERROR)
			break;
		if (w.connected)
			backoff = WATCH_BACKOFF_MIN_MS;
		if (was || w.connected)
			fprintf(stderr, "pocketctl: watch: stream ended; "
				"reconnecting after revision %s\n",
				w.last_id[0] ? w.last_id : "(none)");
		sleep_ms(backoff);
		backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS ?
				  WATCH_BACKOFF_MAX_MS : backoff * 2;
		if (watch_stop) {
			rc = CLI_OK;
			break;
		}
	}
	goto out;
nomem:
	fprintf(stderr, "pocketctl: watch: out of memory\n");
	rc = CLI_ERROR;
out:
	if (h)
		curl_easy_cleanup(h);
	if (token) {
		memset(token, 0, strlen(token));
		free(token);
	}
	free(base);
	free(lurl);
	buf_release(&url);
	buf_release(&kinds);
	selector_free(w.selector);
	buf_release(&w.line);
	buf_release(&w.data);
	buf_release(&w.errbody);
	return rc;
}
