/*
 * bench_fanout.c - the SSE fan-out benchmark's client (bench_fanout.sh
 * starts the server and builds this file): N watchers on /api/v1/watch
 * over loopback, then W record creates through the records API; for each
 * write, the time from sending the POST to the moment the last (and the
 * first) watcher has read the event. Prints p50/p99/max over the writes and
 * the server's VmRSS (/proc/PID/status) with every watcher open.
 *
 * usage: bench_fanout PORT TOKEN_FILE SERVER_PID [WATCHERS [WRITES [IDLE_S
 *        [COLLECTION]]]]
 *
 * COLLECTION is healthchecks (default: no reconciler reacts, one change per
 * write) or ai_prompts (reconcilers report status on each: three changes).
 *
 * After the writes it prints "idle" and keeps the watchers open, reading,
 * for IDLE_S seconds (default 0), so the caller can watch the server idle.
 *
 * One thread, one epoll set for the watchers; every watcher socket
 * non-blocking. Each POST is sent and its reply read by a thread of its
 * own (blocking), so the reply's time is when it arrives, not when the
 * watchers' loop gets round to it. A watcher the server closes before its
 * stream starts (the connection guard sheds connections while all of them
 * arrive at once) dials again, up to MAX_RETRIES times, and the count is
 * printed. Bounded: connecting gives up after 60 s, each write after 10 s.
 * Benchmarks report; the exit status says only whether the run could be
 * done.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MARK "event: create\n"
#define MARK_LEN (sizeof(MARK) - 1)
#define CONNECT_MS 60000
#define WRITE_MS 10000
#define SETTLE_MS 50           /* drain between writes */
#define MAX_RETRIES 5          /* connects of one watcher the server may shed */

struct watcher {
	int fd;
	int ok;                /* headers with status 200 seen */
	char head[2048];       /* the response head while reading it */
	size_t head_len;
	char tail[MARK_LEN];   /* the last bytes, for marks split by reads */
	size_t tail_len;
	long creates;
	int retries;           /* connects shed by the server */
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static int dial(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		die("socket");
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
	ssize_t k;

	while (n) {
		k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			die("send");
		p += k;
		n -= (size_t)k;
	}
}

/* One write: its request, sent and answered on a thread of its own. */
struct post {
	int fd;
	const char *req;
	int64_t t_reply;       /* first byte of the reply (0: none) */
	pthread_t th;
};

static void *post_main(void *arg)
{
	struct post *q = arg;
	struct timeval tv = { WRITE_MS / 1000, 0 };
	char sink[4096];
	ssize_t got;

	setsockopt(q->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	send_all(q->fd, q->req, strlen(q->req));
	while ((got = recv(q->fd, sink, sizeof(sink), 0)) > 0)
		if (!q->t_reply)
			q->t_reply = now_us();
	close(q->fd);
	return NULL;
}

/* Count MARK in the stream, across read boundaries. */
static void scan(struct watcher *w, const char *p, size_t n)
{
	char buf[2 * MARK_LEN];
	size_t i, m = w->tail_len, k = n < MARK_LEN - 1 ? n : MARK_LEN - 1;
	size_t total, keep;

	/* Marks that start in the kept tail and end in this read. */
	memcpy(buf, w->tail, m);
	memcpy(buf + m, p, k);
	for (i = 0; i < m; i++)
		if (i + MARK_LEN <= m + k && !memcmp(buf + i, MARK, MARK_LEN))
			w->creates++;
	/* Marks inside this read. */
	for (i = 0; i + MARK_LEN <= n; i++)
		if (p[i] == 'e' && !memcmp(p + i, MARK, MARK_LEN))
			w->creates++;
	/* Keep the last MARK_LEN - 1 bytes of what was read so far. */
	if (n >= MARK_LEN - 1) {
		memcpy(w->tail, p + n - (MARK_LEN - 1), MARK_LEN - 1);
		w->tail_len = MARK_LEN - 1;
		return;
	}
	memcpy(buf + m, p, n);
	total = m + n;
	keep = total < MARK_LEN - 1 ? total : MARK_LEN - 1;
	memcpy(w->tail, buf + total - keep, keep);
	w->tail_len = keep;
}

/*
 * Read what a watcher has. Returns -1 when it closed or failed. A read
 * that does not fill the buffer took everything there was: stop there, as
 * libuv (Node's EventSource) does, instead of paying a second recv() for
 * EAGAIN; epoll is level-triggered and reports anything left.
 */
static int pump(struct watcher *w)
{
	char buf[65536], *end;
	ssize_t n = 0;

	for (;;) {
		if (n > 0 && (size_t)n < sizeof(buf))
			return 0;
		n = recv(w->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		if (!w->ok) {
			size_t k = (size_t)n;

			if (k > sizeof(w->head) - 1 - w->head_len)
				k = sizeof(w->head) - 1 - w->head_len;
			memcpy(w->head + w->head_len, buf, k);
			w->head_len += k;
			w->head[w->head_len] = '\0';
			end = strstr(w->head, "\r\n\r\n");
			if (!end)
				continue;
			if (strncmp(w->head, "HTTP/1.1 200", 12) != 0) {
				fprintf(stderr, "bench_fanout: watcher refused: %.200s\n",
					w->head);
				exit(2);
			}
			w->ok = 1;
			/* Whatever followed the head in this read. */
			end += 4;
			scan(w, end, w->head_len - (size_t)(end - w->head));
			if (k < (size_t)n)
				scan(w, buf + k, (size_t)n - k);
			continue;
		}
		scan(w, buf, (size_t)n);
	}
}

static long rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

/* CPU time the process used so far (user + system), in milliseconds. */
static double cpu_ms(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(buf, ')');   /* the name may hold spaces */
	for (i = 0; p && i < 12; i++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const int64_t *v, int n, double p)
{
	int k = (int)(p / 100.0 * n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

static void report(const char *what, int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	printf("%-34s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%d writes)\n",
	       what, pct(v, n, 50), pct(v, n, 99), (double)v[n - 1] / 1000.0, n);
}

int main(int argc, char **argv)
{
	struct epoll_event ev, evs[256];
	struct watcher *w;
	char token[8192], wtoken[8192], req[9000], body[256];
	int64_t t0, deadline, *last, *first, *reply;
	double cpu0, cpu1;
	long pid;
	const char *coll = "healthchecks";
	int port, nw = 1000, nwrites = 20, idle_s = 0, ep, i, k, n;
	int connected = 0, retries = 0;
	struct post post;
	FILE *tf;

	if (argc < 4) {
		fprintf(stderr, "usage: bench_fanout PORT TOKEN_FILE SERVER_PID "
			"[WATCHERS [WRITES [IDLE_S [COLLECTION "
			"[WATCHER_TOKEN_FILE]]]]]\n");
		return 2;
	}
	port = atoi(argv[1]);
	pid = atol(argv[3]);
	if (argc > 4)
		nw = atoi(argv[4]);
	if (argc > 5)
		nwrites = atoi(argv[5]);
	if (argc > 6)
		idle_s = atoi(argv[6]);
	if (argc > 7)
		coll = argv[7];
	if (strcmp(coll, "healthchecks") != 0 && strcmp(coll, "ai_prompts") != 0)
		return 2;
	if (nw < 1 || nwrites < 1)
		return 2;
	tf = fopen(argv[2], "r");
	if (!tf || !fgets(token, sizeof(token), tf))
		die("token file");
	fclose(tf);
	token[strcspn(token, "\r\n")] = '\0';
	/* The watchers may watch as someone else (a user: the view rule is
	 * evaluated for every event and watcher). */
	memcpy(wtoken, token, sizeof(wtoken));
	if (argc > 8) {
		tf = fopen(argv[8], "r");
		if (!tf || !fgets(wtoken, sizeof(wtoken), tf))
			die("watcher token file");
		fclose(tf);
		wtoken[strcspn(wtoken, "\r\n")] = '\0';
	}

	w = calloc((size_t)nw, sizeof(*w));
	last = calloc((size_t)nwrites, sizeof(*last));
	first = calloc((size_t)nwrites, sizeof(*first));
	reply = calloc((size_t)nwrites, sizeof(*reply));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!w || !last || !first || !reply || ep < 0)
		die("setup");

	snprintf(req, sizeof(req),
		 "GET /api/v1/watch?collection=%s HTTP/1.1\r\n"
		 "Host: 127.0.0.1:%d\r\nAuthorization: %s\r\n"
		 "Accept: text/event-stream\r\n\r\n", coll, port, wtoken);
	t0 = now_us();
	for (i = 0; i < nw; i++) {
		w[i].fd = dial(port);
		send_all(w[i].fd, req, strlen(req));
		fcntl(w[i].fd, F_SETFL, O_NONBLOCK);
		ev.events = EPOLLIN;
		ev.data.u64 = (uint64_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, w[i].fd, &ev) != 0)
			die("epoll_ctl");
	}
	deadline = t0 + (int64_t)CONNECT_MS * 1000;
	while (connected < nw && now_us() < deadline) {
		n = epoll_wait(ep, evs, 256, 100);
		for (k = 0; k < n; k++) {
			struct watcher *x = &w[evs[k].data.u64];
			int was = x->ok;

			if (pump(x) < 0) {
				/* Shed by the server's connection guard in
				 * the burst of connects: dial again, as an
				 * EventSource does. */
				if (was || ++x->retries > MAX_RETRIES) {
					fprintf(stderr, "bench_fanout: a watcher closed while connecting\n");
					return 2;
				}
				retries++;
				epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
				close(x->fd);
				x->head_len = x->tail_len = 0;
				x->fd = dial(port);
				send_all(x->fd, req, strlen(req));
				fcntl(x->fd, F_SETFL, O_NONBLOCK);
				ev.events = EPOLLIN;
				ev.data.u64 = evs[k].data.u64;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev) != 0)
					die("epoll_ctl");
				continue;
			}
			connected += !was && x->ok;
		}
	}
	if (connected < nw) {
		fprintf(stderr, "bench_fanout: only %d of %d watchers connected\n",
			connected, nw);
		return 2;
	}
	printf("%d watchers connected in %.0f ms (%d connects shed and dialled again)\n",
	       nw, (double)(now_us() - t0) / 1000.0, retries);
	printf("server VmRSS with %d watchers open: %ld kB (%.1f MiB)\n", nw,
	       rss_kb(pid), (double)rss_kb(pid) / 1024.0);
	fflush(stdout);

	cpu0 = cpu_ms(pid);
	for (i = 0; i < nwrites; i++) {
		int need = i + 1, done = 0;
		int64_t t_first = 0, t_last = 0, settle;

		/* Drain (status updates of earlier writes) before timing. */
		settle = now_us() + SETTLE_MS * 1000;
		while (now_us() < settle) {
			n = epoll_wait(ep, evs, 256, 10);
			for (k = 0; k < n; k++) {
				if (pump(&w[evs[k].data.u64]) < 0) {
					fprintf(stderr, "bench_fanout: a watcher closed\n");
					return 2;
				}
			}
		}
		snprintf(body, sizeof(body),
			 "{\"name\":\"fanout-%ld-%d\",\"%s\":\"%s\"}",
			 (long)getpid(), i,
			 coll[0] == 'h' ? "status" : "body",
			 coll[0] == 'h' ? "ready" : "x");
		snprintf(req, sizeof(req),
			 "POST /api/collections/%s/records HTTP/1.1\r\n"
			 "Host: 127.0.0.1:%d\r\nAuthorization: %s\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s", coll, port, token,
			 strlen(body), body);
		memset(&post, 0, sizeof(post));
		post.fd = dial(port);
		post.req = req;
		t0 = now_us();
		if (pthread_create(&post.th, NULL, post_main, &post) != 0)
			die("pthread_create");
		deadline = t0 + (int64_t)WRITE_MS * 1000;
		for (k = 0; k < nw; k++)
			done += w[k].creates >= need;
		while (done < nw && now_us() < deadline) {
			n = epoll_wait(ep, evs, 256, 100);
			for (k = 0; k < n; k++) {
				struct watcher *x;
				long before;

				x = &w[evs[k].data.u64];
				before = x->creates;
				if (pump(x) < 0) {
					fprintf(stderr, "bench_fanout: a watcher closed\n");
					return 2;
				}
				if (before < need && x->creates >= need) {
					int64_t t = now_us();

					if (!done)
						t_first = t;
					t_last = t;
					done++;
				}
			}
		}
		if (done < nw) {
			fprintf(stderr, "bench_fanout: write %d reached %d of %d "
				"watchers in %d ms\n", i, done, nw, WRITE_MS);
			return 2;
		}
		first[i] = t_first - t0;
		last[i] = t_last - t0;
		/* The reply may come after the last delivery: the thread
		 * waits for it (and the end of the connection), bounded. */
		pthread_join(post.th, NULL);
		reply[i] = post.t_reply ? post.t_reply - t0 : 0;
	}
	cpu1 = cpu_ms(pid);
	printf("server CPU per write (fan-out to %d, settling included): %.1f ms\n",
	       nw, (cpu1 - cpu0) / nwrites);
	report("write -> its HTTP reply", reply, nwrites);
	report("write -> first watcher", first, nwrites);
	report("write -> last watcher", last, nwrites);
	printf("server VmRSS after the writes: %ld kB (%.1f MiB)\n",
	       rss_kb(pid), (double)rss_kb(pid) / 1024.0);
	if (idle_s > 0) {
		printf("idle\n");
		fflush(stdout);
		deadline = now_us() + (int64_t)idle_s * 1000000;
		while (now_us() < deadline) {
			n = epoll_wait(ep, evs, 256, 200);
			for (k = 0; k < n; k++)
				if (pump(&w[evs[k].data.u64]) < 0)
					return 2;
		}
	}
	for (i = 0; i < nw; i++)
		close(w[i].fd);
	free(w);
	free(last);
	free(first);
	free(reply);
	return 0;
}
