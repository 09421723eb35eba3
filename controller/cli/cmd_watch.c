/*
 * cmd_watch.c - `pocketctl watch [KIND...] [--since REV] [--status]
 * [--timeout DURATION] [-o text|json]`: follow a running server's
 * /api/v1/watch stream (see api_watch.h) and print one line per change:
 *
 *     2026-12-07T01:50:00.123Z 42 user:ID:a@b.c update toolpermission/p1 spec.action: ask → deny
 *
 * the time of the change (the record's `updated`, made RFC 3339; for a
 * delete, which has no time of its own, when it arrived), the revision,
 * who made it (the event's actor, as the server lets the caller read it;
 * "-" for a change older than the actor column), the action (create, update, delete; status for a reconciler's status
 * report) and kind/name, then for an update the fields it changed with
 * their old and new values. The events carry the record as the change left
 * it, not its previous state, so the command keeps the last record it saw
 * of each (an update of a record not seen before says so). Status-only
 * events are left out unless --status is given. With -o json the event
 * data as the server sent it (one JSON object per line), secret fields
 * masked by the server unless --show-secrets is given (which the server
 * allows a superuser only).
 *
 * The stream is read with libcurl as it arrives and parsed as
 * Server-Sent Events. When the connection drops the command reconnects with
 * Last-Event-ID set to the last id it saw, so the server replays exactly
 * what was missed; a "reset" event (what was missed is no longer retained)
 * is reported on stderr. While the server is unreachable it says so and
 * retries with backoff (200 ms doubling to 5 s); after --timeout
 * (default 5 minutes once it was connected) of that it exits 4. Without a
 * server to talk to at the start it exits 2, unless --timeout is given.
 * A write error on stdout stops it (exit 2).
 */
#include <errno.h>
#include <getopt.h>
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
#include "util.h"

#define WATCH_LINE_MAX ((size_t)64 << 20)   /* one SSE line (a record) */
#define WATCH_STALL_S 45L        /* three missed heartbeats: reconnect */
#define WATCH_CONNECT_S 5L
#define WATCH_BACKOFF_MIN_MS 200
#define WATCH_BACKOFF_MAX_MS 5000
#define WATCH_DOWN_MAX_MS 300000 /* unreachable this long: exit 4 */
#define WATCH_VALUE_MAX 40       /* a changed value is cut beyond */
#define WATCH_DEPTH_MAX 4        /* spec.a.b.c: objects compared deeper */

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
	bool show_status;        /* --status: print status-only events */
	bool write_failed;       /* stdout refused a line: stop */
	json_t *seen;            /* "collection/id" -> the last record seen
	                          * (owned), for the changed fields */
	bool unreachable;        /* this attempt reached no server */
	char why[128];           /* libcurl's reason */
	int64_t down_max_ms;     /* --timeout; -1: none given */
};

/* v as the changes show it: a string as is, else compact JSON; cut at
 * WATCH_VALUE_MAX bytes. */
static void put_value(struct buf *b, json_t *v)
{
	char *text = NULL;
	const char *s;
	size_t n;

	if (!v) {
		buf_puts(b, "(unset)");
		return;
	}
	s = json_is_string(v) ? json_string_value(v) :
	    (text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
	if (!s)
		s = "?";
	n = strlen(s);
	if (n > WATCH_VALUE_MAX)
		buf_printf(b, "%.*s...", WATCH_VALUE_MAX - 3, s);
	else
		buf_puts(b, s);
	free(text);
}

/* Append "PREFIX.KEY: OLD → NEW" for every key of the objects a and b
 * whose values differ (objects on both sides compared key by key). */
static void diff_objects(struct buf *b, const char *prefix, json_t *a,
			 json_t *c, int depth)
{
	const char *key;
	json_t *v, *w;
	char path[256];

	json_object_foreach(c, key, v) {
		w = json_object_get(a, key);
		if (w && json_equal(v, w))
			continue;
		snprintf(path, sizeof(path), "%s.%s", prefix, key);
		if (json_is_object(v) && json_is_object(w) && depth < WATCH_DEPTH_MAX) {
			diff_objects(b, path, w, v, depth + 1);
			continue;
		}
		buf_printf(b, "%s%s: ", b->len ? ", " : "", path);
		put_value(b, w);
		buf_puts(b, " → ");
		put_value(b, v);
	}
	json_object_foreach(a, key, w) {
		if (json_object_get(c, key))
			continue;
		snprintf(path, sizeof(path), "%s.%s", prefix, key);
		buf_printf(b, "%s%s: ", b->len ? ", " : "", path);
		put_value(b, w);
		buf_puts(b, " → (unset)");
	}
}

/*
 * The time of a change in RFC 3339 UTC: the record's updated
 * ("2026-12-07 01:50:00.123Z") with a T, or now for a delete and a record
 * without one.
 */
static void change_time(json_t *rec, const char *action, char *out, size_t n)
{
	const char *u = cli_jstr(rec, "updated");
	char now[TIME_LEN + 1];

	if (strcmp(action, "delete") && strlen(u) > 11 && u[10] == ' ') {
		snprintf(out, n, "%.10sT%s", u, u + 11);
		return;
	}
	util_now(now);
	now[10] = 'T';
	snprintf(out, n, "%s", now);
}

/* Print one change in text form (see the top of the file) and remember
 * the record for the next. */
static void print_text(struct watch *w, json_t *d)
{
	const struct collection *c;
	const char *coll = cli_jstr(d, "collection");
	const char *name = cli_jstr(d, "name");
	const char *action = cli_jstr(d, "action");
	bool status_only = json_is_true(json_object_get(d, "statusOnly"));
	json_t *rec = json_object_get(d, "record"), *old;
	struct buf changes = BUF_INIT;
	char kind[64], key[160], when[48];

	c = schema_find(w->cli->schema, coll);
	if (c)
		cli_kind_lower(c, kind, sizeof(kind));
	else
		snprintf(kind, sizeof(kind), "%s", *coll ? coll : "unknown");
	snprintf(key, sizeof(key), "%s/%s", coll, cli_jstr(d, "id"));
	old = json_object_get(w->seen, key);
	if (!strcmp(action, "update") && !old) {
		buf_puts(&changes, "(not seen before: its earlier values are unknown)");
	} else if (!strcmp(action, "update")) {
		diff_objects(&changes, "spec", json_object_get(old, "data"),
			     json_object_get(rec, "data"), 1);
		diff_objects(&changes, "metadata.labels",
			     json_object_get(old, "labels"),
			     json_object_get(rec, "labels"), 1);
		if (status_only)
			diff_objects(&changes, "status", json_object_get(old, "status"),
				     json_object_get(rec, "status"), 1);
	}
	if (!strcmp(action, "delete"))
		json_object_del(w->seen, key);
	else if (json_is_object(rec))
		json_object_set(w->seen, key, rec);   /* a new reference */
	if (status_only && !w->show_status)
		goto out;
	change_time(rec, action, when, sizeof(when));
	w->events++;
	if (printf("%s %lld %s %s %s/%s%s%s\n", when,
		   (long long)json_integer_value(json_object_get(d, "revision")),
		   *cli_jstr(d, "actor") ? cli_jstr(d, "actor") : "-",
		   status_only ? "status" : action, kind, *name ? name : cli_jstr(d, "id"),
		   changes.len ? " " : "", changes.len ? changes.ptr : "") < 0)
		w->write_failed = true;
out:
	buf_release(&changes);
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
	if (w->selector && json_is_object(d) &&
	    !selector_match(w->selector, json_object_get(
			json_object_get(d, "record"), "labels")))
		goto out;
	if (!json_is_object(d))
		fprintf(stderr, "pocketctl: watch: event '%s' with data that "
			"is not a JSON object\n", w->event);
	else if (w->output == OUT_TEXT)
		print_text(w, d);
	else if (w->show_status || !json_is_true(json_object_get(d, "statusOnly"))) {
		w->events++;
		if (printf("%s\n", w->data.ptr) < 0)
			w->write_failed = true;
	}
out:
	if (fflush(stdout) || ferror(stdout))
		w->write_failed = true;
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
		if (sse_line(w, w->line.ptr, w->line.len) || w->write_failed)
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
	if (w->write_failed)
		return CLI_ERROR;       /* main() says what */
	if (w->connected)
		w->ever_connected = true;
	w->unreachable = cc != CURLE_OK && !w->connected && !w->status;
	snprintf(w->why, sizeof(w->why), "%s", curl_easy_strerror(cc));
	if (w->unreachable && !w->ever_connected && w->down_max_ms < 0) {
		fprintf(stderr, "pocketctl: watch: no pocketctl server answers "
			"at %s (%s); start one with 'pocketctl serve' or pass "
			"--server URL (or --timeout DURATION to wait for one)\n",
			url, w->why);
		return CLI_ERROR;
	}
	return rc;
}

/*
 * Before a live watch (no --since), the current records of the watched
 * collections (all, or kinds[]), so that the first update of each shows
 * what it changed. Best effort: a server that cannot be asked now leaves
 * the map empty (those updates then say their earlier values are unknown).
 * The connection is released at once: watch holds nothing meanwhile.
 */
static void prime(struct watch *w, struct cli *cli,
		  const struct collection *const *kinds, size_t nkinds,
		  bool show)
{
	const struct schema *sc = cli->schema;
	const struct collection *c;
	struct err e = ERR_INIT;
	json_t *reply, *item;
	char path[256], key[160];
	size_t i, j;

	if (cli_connect(cli, &e) || !cli->conn.http)
		goto out;
	for (i = 0; i < (nkinds ? nkinds : sc->ncollections); i++) {
		c = nkinds ? kinds[i] : &sc->collections[i];
		snprintf(path, sizeof(path), "/api/v1/manifests/%s?view=record%s",
			 c->name, show ? "&" PROTO_SHOW_SECRETS "=true" : "");
		reply = NULL;
		if (cli_http(&cli->conn, "GET", path, NULL, NULL, 0, &reply, &e)) {
			json_decref(reply);
			continue;
		}
		json_array_foreach(json_object_get(reply, "items"), j, item) {
			snprintf(key, sizeof(key), "%s/%s", c->name, cli_jstr(item, "id"));
			json_object_set(w->seen, key, item);
		}
		json_decref(reply);
	}
out:
	cli_disconnect(&cli->conn);
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (!watch_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int cmd_watch(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "status", no_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 't' },
		{ "selector", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	struct watch w;
	struct buf url = BUF_INIT, kinds = BUF_INIT;
	struct sigaction sa;
	const struct collection *c, *sel[128];
	size_t nsel = 0;
	char *base = NULL, *token = NULL, *fresh, *lurl = NULL, *end = NULL;
	CURL *h = NULL;
	int64_t backoff = WATCH_BACKOFF_MIN_MS, down_since = 0, down_max;
	long long since = -1;
	bool show = false;
	int i, rc = CLI_ERROR;

	memset(&w, 0, sizeof(w));
	w.cli = cli;
	buf_init(&w.line, WATCH_LINE_MAX);
	buf_init(&w.data, WATCH_LINE_MAX);
	buf_init(&w.errbody, (size_t)1 << 20);
	w.output = !strcmp(cli->output, "json") ? OUT_JSON : OUT_TEXT;
	w.seen = json_object();
	w.down_max_ms = -1;
	if (!w.seen)
		goto nomem;
	argc = cli_take_flag(argc, argv, "--show-secrets", &show);
	optind = 1;
	opterr = 0;
	while ((i = getopt_long(argc, argv, "l:", longopts, NULL)) != -1) {
		if (i == 's') {
			errno = 0;
			since = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end || since < 0) {
				rc = cli_usage("watch", "--since needs a revision number, not '%s'",
					       optarg);
				goto out;
			}
		} else if (i == 'S') {
			w.show_status = true;
		} else if (i == 't') {
			if (cli_parse_duration(optarg, true, &w.down_max_ms)) {
				rc = cli_usage("watch", "--timeout needs a duration such as 90, 45s or 2m, not '%s'",
					       optarg);
				goto out;
			}
		} else if (i == 'l') {
			struct err e = ERR_INIT;

			selector_free(w.selector);
			w.selector = NULL;
			if (selector_parse(optarg, &w.selector, &e)) {
				rc = cli_usage("watch", "%s", e.msg);
				goto out;
			}
		} else {
			rc = cli_usage("watch", "unknown or incomplete option '%s'",
				       argv[optind - 1]);
			goto out;
		}
	}
	for (i = optind; i < argc; i++) {
		c = schema_find_kind_or_short(cli->schema, argv[i]);
		if (!c) {
			rc = cli_usage("watch", "unknown kind '%s'", argv[i]);
			goto out;
		}
		if ((kinds.len && buf_putc(&kinds, ',')) || buf_puts(&kinds, c->name))
			goto nomem;
		if (nsel < sizeof(sel) / sizeof(sel[0]))
			sel[nsel++] = c;
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

	if (since < 0 && w.output == OUT_TEXT)
		prime(&w, cli, sel, nsel, show);
	down_max = w.down_max_ms >= 0 ? w.down_max_ms : WATCH_DOWN_MAX_MS;
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
		if (w.connected) {
			backoff = WATCH_BACKOFF_MIN_MS;
			down_since = 0;
		}
		if (w.unreachable) {
			if (!down_since)
				down_since = util_monotonic_ms();
			if (util_monotonic_ms() - down_since >= down_max) {
				fprintf(stderr, "pocketctl: watch: server unreachable at %s "
					"for %lld s (%s); giving up\n", base,
					(long long)(util_monotonic_ms() - down_since) / 1000,
					w.why);
				rc = CLI_TIMEOUT;
				break;
			}
			fprintf(stderr, "pocketctl: watch: server unreachable at %s (%s), "
				"retrying in %.1f s\n", base, w.why, (double)backoff / 1000);
		} else if (was || w.connected) {
			fprintf(stderr, "pocketctl: watch: stream ended; "
				"reconnecting after revision %s\n",
				w.last_id[0] ? w.last_id : "(none)");
		}
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
	json_decref(w.seen);
	return rc;
}
