/*
 * pump.c - the stream pump (see pump.h): a few epoll threads (lanes) that
 * write every open SSE stream, each stream on one lane.
 */
#include "pump.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockfind.h"
#include "util.h"

#define EVENTS 256          /* epoll events taken per wait */
#define ROUNDS 8            /* fills per stream per pass, when more waits */

struct pstream {
	struct sse_stream *st;
	int fd;
	bool armed;          /* EPOLLOUT is registered */
	bool again;          /* fill again without news */
	bool ending;         /* writing the body's end, then close */
	bool gone;           /* closed: drop from the table */
	size_t tail_sent;    /* bytes of the body's end written */
	int64_t stall_since; /* since when its send queue has not moved (0:
	                      * the socket takes what it is given) */
	int outq;            /* its send queue then, in bytes */
	uint64_t moved;      /* bytes written then (events and tail) */
};

/* One pump thread and the streams it owns. */
struct lane {
	struct pump *p;
	int ep;                          /* epoll */
	int kick;                        /* eventfd: new streams, stop */
	int wake;                        /* the hub's wake eventfd for it */
	pthread_t thread;
	bool started, joined;
	_Atomic size_t count;            /* streams it serves */

	pthread_mutex_t mu;              /* guards the two below */
	struct pstream **incoming;
	size_t nin, capin;
	bool stopping;

	/* the lane thread's own */
	struct pstream **live;
	size_t nlive, caplive;
};

struct pump {
	struct hub *hub;                 /* borrowed */
	struct metrics *metrics;         /* borrowed, nullable */
	int64_t stall_ms;                /* see PUMP_STALL_MS */
	int nice;                        /* see PUMP_NICE */
	struct lane *lanes;
	int nlanes;
};

/* epoll tags for the two eventfds (streams are tagged with themselves) */
static char tag_kick, tag_hub;

/* ---- finding the socket ------------------------------------------------- */

int pump_find_socket(const struct http_req *r, struct err *e)
{
	const struct mg_request_info *ri = r->ri;
	struct sockfind_key k;

	memset(&k, 0, sizeof(k));
	snprintf(k.addr, sizeof(k.addr), "%s", ri->remote_addr);
	k.port = ri->remote_port;
	k.local_port = ri->server_port;
	if (sockfind_find(&k) != 0)
		return err_set(e, ERR_UNAVAILABLE, "cannot list open "
			       "descriptors to hand the stream over: %s",
			       strerror(errno));
	if (k.matches != 1)
		return err_set(e, ERR_UNAVAILABLE, "cannot hand the stream "
			       "over: %d sockets match %s:%d", k.matches,
			       ri->remote_addr, ri->remote_port);
	return k.fd;
}

/* ---- streams ---------------------------------------------------------------- */

static void arm(struct lane *l, struct pstream *ps, bool out)
{
	struct epoll_event ev;

	if (ps->armed == out)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0);
	ev.data.ptr = ps;
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, ps->fd, &ev) == 0)
		ps->armed = out;
}

/* Close ps and give its slot back; also for one never added to epoll
 * (the DEL then fails, harmlessly). */
static void close_stream(struct lane *l, struct pstream *ps)
{
	if (ps->gone)
		return;
	ps->gone = true;
	epoll_ctl(l->ep, EPOLL_CTL_DEL, ps->fd, NULL);
	close(ps->fd);
	ps->st->release(ps->st);
	if (l->p->metrics)
		metrics_stream_leave(l->p->metrics);
	atomic_fetch_sub(&l->count, 1);
}

/*
 * The socket refused bytes: wait for EPOLLOUT, or drop a stalled client.
 * Stalled means nothing moved for stall_ms: the socket took none of our
 * bytes and its send queue did not shrink. A slow client that reads a
 * little keeps things moving, however slowly (the kernel may wait for a
 * third of the buffer to free before it says EPOLLOUT).
 */
static void blocked(struct lane *l, struct pstream *ps, int64_t now)
{
	uint64_t moved = ps->st->out.written + ps->tail_sent;
	int q = -1;

	if (ioctl(ps->fd, SIOCOUTQ, &q) != 0)
		q = ps->outq;
	if (moved != ps->moved || q < ps->outq) {
		ps->moved = moved;
		ps->outq = q;
		ps->stall_since = now;   /* it moved */
	} else if (!ps->stall_since) {
		ps->stall_since = now;
	} else if (now - ps->stall_since >= l->p->stall_ms) {
		close_stream(l, ps);
		return;
	}
	arm(l, ps, true);
}

/* Write the body's end, then close. */
static void end_stream(struct lane *l, struct pstream *ps, int64_t now)
{
	const char *tail = sse_tail(&ps->st->out);
	size_t n = strlen(tail);
	ssize_t w;

	ps->ending = true;
	if (ps->st->out.dead)
		n = 0;
	while (ps->tail_sent < n) {
		w = send(ps->fd, tail + ps->tail_sent, n - ps->tail_sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			ps->tail_sent += (size_t)w;
			ps->stall_since = 0;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			blocked(l, ps, now);
			return;
		}
		break;
	}
	close_stream(l, ps);
}

/*
 * Write what is waiting, then let the stream fill while it has news (or
 * asked to be called again, or its deadline passed) and its socket takes
 * what it buffers.
 */
static void service(struct lane *l, struct pstream *ps, bool news,
		    int64_t now)
{
	struct sse_stream *st = ps->st;
	int rounds, rc, w;

	if (ps->gone)
		return;
	if (sse_pending(&st->out)) {
		w = sse_send(&st->out, ps->fd);
		if (w < 0) {
			close_stream(l, ps);
			return;
		}
		if (w > 0) {
			blocked(l, ps, now);
			return;
		}
		/* Drained: news may have come while it waited. */
		ps->again = true;
	}
	if (ps->ending) {
		end_stream(l, ps, now);
		return;
	}
	ps->stall_since = 0;
	arm(l, ps, false);
	if (!news && !ps->again && now < st->wake_ms)
		return;
	ps->again = false;
	for (rounds = 0; rounds < ROUNDS; rounds++) {
		rc = st->fill(st, now);
		w = sse_send(&st->out, ps->fd);
		if (w < 0) {
			close_stream(l, ps);
			return;
		}
		if (rc < 0) {
			ps->ending = true;
			if (w > 0)
				blocked(l, ps, now);   /* the rest first */
			else
				end_stream(l, ps, now);
			return;
		}
		if (w > 0) {
			blocked(l, ps, now);
			return;
		}
		if (rc == 0)
			return;
	}
	ps->again = true;   /* more waits: after the other streams */
}

/* The client sent bytes (ignored) or left. */
static void readable(struct lane *l, struct pstream *ps, uint32_t ev)
{
	char scratch[512];
	ssize_t n;

	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		close_stream(l, ps);
		return;
	}
	for (;;) {
		n = recv(ps->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close_stream(l, ps);
		return;
	}
}

static void drain(int fd)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));

	(void)n;
}

/* Move adopted streams into the live table. Returns true when stopping. */
static bool take_incoming(struct lane *l)
{
	struct epoll_event ev;
	struct pstream *ps, **grown;
	bool stopping;
	size_t i;

	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->nin; i++) {
		ps = l->incoming[i];
		if (l->nlive == l->caplive) {
			size_t cap = l->caplive ? l->caplive * 2 : 64;

			grown = realloc(l->live, cap * sizeof(*grown));
			if (!grown) {
				/* Keep the rest queued; try next pass. */
				memmove(l->incoming, l->incoming + i,
					(l->nin - i) * sizeof(*l->incoming));
				l->nin -= i;
				goto out;
			}
			l->live = grown;
			l->caplive = cap;
		}
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = ps;
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, ps->fd, &ev) != 0) {
			close_stream(l, ps);
			free(ps);
			continue;
		}
		ps->again = true;    /* write its first events, then fill */
		l->live[l->nlive++] = ps;
	}
	l->nin = 0;
out:
	stopping = l->stopping;
	pthread_mutex_unlock(&l->mu);
	return stopping;
}

/* Drop closed streams from the live table. */
static void sweep(struct lane *l)
{
	size_t i, n = 0;

	for (i = 0; i < l->nlive; i++) {
		if (l->live[i]->gone)
			free(l->live[i]);
		else
			l->live[n++] = l->live[i];
	}
	l->nlive = n;
}

/* Milliseconds until the pump must look at a stream again; -1 (no
 * timer) without streams: a new one or the stop kicks the pump. */
static int next_timeout(struct lane *l, int64_t now)
{
	int64_t t = INT64_MAX, due;
	struct pstream *ps;
	size_t i;

	for (i = 0; i < l->nlive; i++) {
		ps = l->live[i];
		if (ps->again)
			return 0;
		due = ps->stall_since ? ps->stall_since + l->p->stall_ms
				      : ps->st->wake_ms;
		if (due < t)
			t = due;
	}
	if (t == INT64_MAX)
		return -1;
	if (t - now > INT32_MAX)
		return INT32_MAX;
	return t <= now ? 0 : (int)(t - now);
}

/* Lower the calling thread's priority by inc (a nice increment; at most
 * to 19): the request workers and the hub run first when the CPUs are
 * busy, so a write is answered before a thousand watchers are told. */
static void lane_nice(int inc)
{
	id_t tid = (id_t)gettid();
	int cur;

	if (inc <= 0)
		return;
	errno = 0;
	cur = getpriority(PRIO_PROCESS, tid);
	if (cur == -1 && errno)
		return;
	(void)setpriority(PRIO_PROCESS, tid, cur + inc > 19 ? 19 : cur + inc);
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	struct epoll_event evs[EVENTS];
	struct pstream *ps;
	bool news = true;
	int64_t now;
	size_t i;
	int n, k;

	lane_nice(l->p->nice);
	while (!take_incoming(l)) {
		now = util_monotonic_ms();
		for (i = 0; i < l->nlive; i++)
			service(l, l->live[i], news, now);
		sweep(l);
		news = false;
		n = epoll_wait(l->ep, evs, EVENTS,
			       next_timeout(l, util_monotonic_ms()));
		for (k = 0; k < n; k++) {
			if (evs[k].data.ptr == &tag_kick) {
				drain(l->kick);
			} else if (evs[k].data.ptr == &tag_hub) {
				drain(l->wake);
				news = true;
			} else {
				ps = evs[k].data.ptr;
				if (!ps->gone &&
				    (evs[k].events & ~(uint32_t)EPOLLOUT))
					readable(l, ps, evs[k].events);
			}
		}
		/* Streams closed by their client stay in the table (gone)
		 * until the next sweep, so event pointers stay valid. */
	}
	/* Stopping: end every stream as far as its socket takes it. */
	now = util_monotonic_ms();
	for (i = 0; i < l->nlive; i++) {
		ps = l->live[i];
		if (!ps->gone && !sse_pending(&ps->st->out))
			end_stream(l, ps, now);
		close_stream(l, ps);
	}
	sweep(l);
	return NULL;
}

/* ---- public ---------------------------------------------------------------- */

static int lane_init(struct lane *l, struct pump *p, int i, struct err *e)
{
	struct epoll_event ev;

	l->p = p;
	l->kick = -1;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	/* each checked at once, so errno is the failed call's */
	if (l->ep < 0 ||
	    (l->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    (l->wake = hub_wake_fd(p->hub, i)) < 0)
		goto fail;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &tag_kick;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->kick, &ev) != 0)
		goto fail;
	ev.data.ptr = &tag_hub;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake, &ev) != 0)
		goto fail;
	errno = pthread_mutex_init(&l->mu, NULL);   /* an error number */
	if (!errno)
		return 0;
fail:
	err_set(e, ERR_IO, "cannot set up the stream pump: %s",
		strerror(errno));
	if (l->ep >= 0)
		close(l->ep);
	if (l->kick >= 0)
		close(l->kick);
	return e->code;
}

int pump_new(struct pump **out, struct hub *h, struct metrics *m,
	     struct err *e)
{
	struct pump *p;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int i, want;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(e, ERR_NOMEM, "out of memory");
	p->hub = h;
	p->metrics = m;
	p->stall_ms = util_env_int("POCKETCTL_STREAM_STALL_MS", PUMP_STALL_MS,
				   100, (int64_t)24 * 3600 * 1000);
	want = cpus < 1 ? 1 : cpus > PUMP_LANES ? PUMP_LANES : (int)cpus;
	want = (int)util_env_int("POCKETCTL_PUMP_THREADS", want, 1,
				 PUMP_LANES_MAX);
	p->nice = (int)util_env_int("POCKETCTL_PUMP_NICE", PUMP_NICE, 0, 19);
	p->lanes = calloc((size_t)want, sizeof(*p->lanes));
	if (!p->lanes) {
		free(p);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	for (i = 0; i < want; i++) {
		if (lane_init(&p->lanes[i], p, i, e) != 0) {
			pump_free(p);
			return e->code;
		}
		p->nlanes = i + 1;
	}
	*out = p;
	return 0;
}

int pump_start(struct pump *p, struct err *e)
{
	struct lane *l;
	int i;

	for (i = 0; i < p->nlanes; i++) {
		l = &p->lanes[i];
		if (pthread_create(&l->thread, NULL, lane_main, l) != 0) {
			pump_stop(p);
			return err_set(e, ERR_INTERNAL,
				       "cannot start the stream pump threads");
		}
		l->started = true;
	}
	return 0;
}

/* The lane with the fewest streams. */
static struct lane *lane_pick(struct pump *p)
{
	struct lane *best = &p->lanes[0];
	size_t n, least = atomic_load(&best->count);
	int i;

	for (i = 1; i < p->nlanes; i++) {
		n = atomic_load(&p->lanes[i].count);
		if (n < least) {
			least = n;
			best = &p->lanes[i];
		}
	}
	return best;
}

int pump_adopt(struct pump *p, int fd, struct sse_stream *st, struct err *e)
{
	struct pstream *ps = calloc(1, sizeof(*ps));
	struct pstream **grown;
	struct lane *l = lane_pick(p);
	uint64_t one = 1;
	int mine = -1, sp[2] = { -1, -1 }, fl, sndbuf = PUMP_SNDBUF;
	ssize_t w;

	if (!ps)
		return err_set(e, ERR_NOMEM, "out of memory");
	pthread_mutex_lock(&l->mu);
	if (l->stopping) {
		err_set(e, ERR_UNAVAILABLE, "the server is stopping");
		goto fail;
	}
	if (l->nin == l->capin) {
		size_t cap = l->capin ? l->capin * 2 : 16;

		grown = realloc(l->incoming, cap * sizeof(*grown));
		if (!grown) {
			err_set(e, ERR_NOMEM, "out of memory");
			goto fail;
		}
		l->incoming = grown;
		l->capin = cap;
	}
	mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (mine < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		err_set(e, ERR_IO, "cannot hand the stream over: %s",
			strerror(errno));
		goto fail;
	}
	fl = fcntl(mine, F_GETFL);
	/* A fixed send buffer: bounded kernel memory per stream, and a
	 * client that reads nothing is noticed (see blocked()). */
	(void)setsockopt(mine, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (fl < 0 || fcntl(mine, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    dup2(sp[0], fd) < 0) {
		err_set(e, ERR_IO, "cannot hand the stream over: %s",
			strerror(errno));
		goto fail;
	}
	/* fd is civetweb's dead end now; the client is on mine only. */
	close(sp[0]);
	close(sp[1]);
	ps->st = st;
	ps->fd = mine;
	l->incoming[l->nin++] = ps;
	atomic_fetch_add(&l->count, 1);
	pthread_mutex_unlock(&l->mu);
	w = write(l->kick, &one, sizeof(one));
	(void)w;
	return 0;
fail:
	pthread_mutex_unlock(&l->mu);
	if (mine >= 0)
		close(mine);
	if (sp[0] >= 0)
		close(sp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
	free(ps);
	return e->code;
}

size_t pump_count(struct pump *p)
{
	size_t n = 0;
	int i;

	if (!p)
		return 0;
	for (i = 0; i < p->nlanes; i++)
		n += atomic_load(&p->lanes[i].count);
	return n;
}

void pump_stop(struct pump *p)
{
	uint64_t one = 1;
	struct lane *l;
	ssize_t w;
	int i;

	if (!p)
		return;
	/* Every lane first, so they end their streams side by side. */
	for (i = 0; i < p->nlanes; i++) {
		l = &p->lanes[i];
		pthread_mutex_lock(&l->mu);
		l->stopping = true;
		pthread_mutex_unlock(&l->mu);
		w = write(l->kick, &one, sizeof(one));
		(void)w;
	}
	for (i = 0; i < p->nlanes; i++) {
		l = &p->lanes[i];
		if (l->started && !l->joined) {
			pthread_join(l->thread, NULL);
			l->joined = true;
		}
	}
}

void pump_free(struct pump *p)
{
	struct lane *l;
	size_t k;
	int i;

	if (!p)
		return;
	pump_stop(p);
	for (i = 0; i < p->nlanes; i++) {
		l = &p->lanes[i];
		/* Streams adopted after the thread's last look. */
		for (k = 0; k < l->nin; k++) {
			close_stream(l, l->incoming[k]);
			free(l->incoming[k]);
		}
		free(l->incoming);
		free(l->live);
		close(l->ep);
		close(l->kick);
		pthread_mutex_destroy(&l->mu);
	}
	free(p->lanes);
	free(p);
}
