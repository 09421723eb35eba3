/*
 * cmd_logs.c - `pocketctl logs CONTAINER [-f] [--tail N]`: print a managed
 * container's log through the running server (GET
 * /api/pocketcoder/logs/CONTAINER?tail=N&follow=0|1, an SSE stream with one
 * `data:` line per log line, see api_containers.h). Only the server drives
 * the container engine, so there is no offline form. Lines go to stdout as
 * they arrive; the stream's `end` event ends the command (exit 0), its
 * `error` event is an error (exit 2), as is a refusal before the stream
 * (an unmanaged or missing container, the engine unreachable).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"

#define LOGS_USAGE "usage: pocketctl logs CONTAINER [-f] [--tail N]"
#define LOGS_TAIL_MAX 100000     /* the server's bound (api_containers.c) */

/* The SSE parse of the log stream: events are one data line each. */
struct logs {
	char event[16];          /* the current event's name ("" for a line) */
	struct buf data;         /* the current event's data */
	bool ended;              /* the server said end */
	struct err *e;           /* set by an error event */
	bool failed;
	bool write_failed;
};

/* One complete SSE event. Returns non-zero to stop the stream. */
static int logs_event(struct logs *l)
{
	json_t *d = NULL;
	int stop = 0;

	if (!l->event[0]) {
		if (fwrite(l->data.ptr, 1, l->data.len, stdout) != l->data.len ||
		    putchar('\n') == EOF || fflush(stdout))
			l->write_failed = true, stop = 1;
	} else if (!strcmp(l->event, "end")) {
		l->ended = true;
		stop = 1;
	} else if (!strcmp(l->event, "error")) {
		d = json_loadb(l->data.ptr, l->data.len, 0, NULL);
		err_set(l->e, ERR_ENGINE, "the log stream failed: %s",
			*cli_jstr(d, "message") ? cli_jstr(d, "message") :
						  "no reason given");
		l->failed = true;
		stop = 1;
	}
	json_decref(d);
	buf_reset(&l->data);
	l->event[0] = '\0';
	return stop;
}

static int logs_line(void *arg, const char *line, size_t len)
{
	struct logs *l = arg;
	const char *v;

	if (len == 0)
		return l->data.len || l->event[0] ? logs_event(l) : 0;
	if (line[0] == ':')
		return 0;                /* ": logs", heartbeats */
	v = memchr(line, ':', len);
	if (!v)
		return 0;
	v++;
	if (*v == ' ')
		v++;
	if (!strncmp(line, "data:", 5)) {
		if (l->data.len && buf_putc(&l->data, '\n'))
			return 1;
		return buf_add(&l->data, v, len - (size_t)(v - line)) ? 1 : 0;
	}
	if (!strncmp(line, "event:", 6))
		snprintf(l->event, sizeof(l->event), "%.*s",
			 (int)(len - (size_t)(v - line)), v);
	return 0;
}

int cmd_logs(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "tail", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct err e = ERR_INIT;
	struct logs l;
	const char *tail = "100";
	char *esc = NULL, *path = NULL, *end = NULL;
	bool follow = false;
	long n;
	int c, rc;

	memset(&l, 0, sizeof(l));
	buf_init(&l.data, (size_t)1 << 20);
	l.e = &e;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f", longopts, NULL)) != -1) {
		if (c == 'f') {
			follow = true;
			continue;
		}
		if (c == 't') {
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (strcmp(optarg, "all") &&
			    (errno || end == optarg || *end || n < 0 || n > LOGS_TAIL_MAX)) {
				rc = cli_usage("logs", "--tail needs a number of lines from 0 to %d or 'all', not '%s'",
					       LOGS_TAIL_MAX, optarg);
				goto out;
			}
			tail = optarg;
			continue;
		}
		rc = cli_usage("logs", "unknown or incomplete option '%s'",
			       argv[optind - 1]);
		goto out;
	}
	if (argc - optind != 1 || !argv[optind][0]) {
		rc = cli_usage("logs", LOGS_USAGE);
		goto out;
	}
	if (cli->offline) {
		rc = cli_usage("logs", "logs needs a running server (pocketctl serve); --offline cannot read container logs");
		goto out;
	}
	if (cli_connect(cli, &e))
		goto fail;
	if (!cli->conn.http) {
		err_set(&e, ERR_UNAVAILABLE,
			"no server is running on data directory '%s': logs needs "
			"pocketctl serve (or --server URL)", cli->data_dir);
		goto fail;
	}
	esc = client_escape(cli->conn.http, argv[optind]);
	if (!esc || asprintf(&path, "/api/pocketcoder/logs/%s?tail=%s&follow=%d",
			     esc, tail, follow ? 1 : 0) < 0) {
		path = NULL;
		err_set(&e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (client_stream(cli->conn.http, path, logs_line, &l, &e))
		goto fail;
	if (l.failed)
		goto fail;
	if (l.write_failed) {
		rc = CLI_ERROR;         /* main() says what */
		goto out;
	}
	if (!l.ended) {
		err_set(&e, ERR_UNAVAILABLE, "the server at %s ended the log stream early",
			client_url(cli->conn.http));
		goto fail;
	}
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(&e);
out:
	buf_release(&l.data);
	free(path);
	free(esc);
	return rc;
}
