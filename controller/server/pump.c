/*
 * pump.c - the stream pump (see pump.h): one epoll thread that writes every
 * open SSE stream.
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

struct pump {
	struct hub *hub;                 /* borrowed */
	struct metrics *metrics;         /* borrowed, nullable */
	int ep;                          /* epoll */
	int kick;                        /* eventfd: new streams, stop */
	int64_t stall_ms;                /* see PUMP_STALL_MS */
	pthread_t thread;
	bool started, joined;
	_Atomic size_t count;

	pthread_mutex_t mu;              /* guards the two below */
	struct pstream **incoming;
	size_t nin, capin;
	bool stopping;

	/* the pump thread's own */
	struct pstream **live;
	size_t nlive, caplive;
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

static void arm(struct pump *p, struct pstream *ps, bool out)
{
	struct epoll_event ev;

	if (ps->armed == out)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0);
	ev.data.ptr = ps;
	if (epoll_ctl(p->ep, EPOLL_CTL_MOD, ps->fd, &ev) == 0)
		ps->armed = out;
}

/* Close ps and give its slot back; also for one never added to epoll
 * (the DEL then fails, harmlessly). */
static void close_stream(struct pump *p, struct pstream *ps)
{
	if (ps->gone)
		return;
	ps->gone = true;
	epoll_ctl(p->ep, EPOLL_CTL_DEL, ps->fd, NULL);
	close(ps->fd);
	ps->st->release(ps->st);
	if (p->metrics)
		metrics_stream_leave(p->metrics);
	atomic_fetch_sub(&p->count, 1);
}

/*
 * The socket refused bytes: wait for EPOLLOUT, or drop a stalled client.
 * Stalled means nothing moved for stall_ms: the socket took none of our
 * bytes and its send queue did not shrink. A slow client that reads a
 * little keeps things moving, however slowly (the kernel may wait for a
 * third of the buffer to free before it says EPOLLOUT).
 */
static void blocked(struct pump *p, struct pstream *ps, int64_t now)
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
	} else if (now - ps->stall_since >= p->stall_ms) {
		close_stream(p, ps);
		return;
	}
	arm(p, ps, true);
}

/* Write the body's end, then close. */
static void end_stream(struct pump *p, struct pstream *ps, int64_t now)
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
			blocked(p, ps, now);
			return;
		}
		break;
	}
	close_stream(p, ps);
}

/*
 * Write what is waiting, then let the stream fill while it has news (or
 * asked to be called again, or its deadline passed) and its socket takes
 * what it buffers.
 */
static void service(struct pump *p, struct pstream *ps, bool news,
		    int64_t now)
{
	struct sse_stream *st = ps->st;
	int rounds, rc, w;

	if (ps->gone)
		return;
	if (sse_pending(&st->out)) {
		w = sse_send(&st->out, ps->fd);
		if (w < 0) {
			close_stream(p, ps);
			return;
		}
		if (w > 0) {
			blocked(p, ps, now);
			return;
		}
		/* Drained: news may have come while it waited. */
		ps->again = true;
	}
	if (ps->ending) {
		end_stream(p, ps, now);
		return;
	}
	ps->stall_since = 0;
	arm(p, ps, false);
	if (!news && !ps->again && now < st->wake_ms)
		return;
	ps->again = false;
	for (rounds = 0; rounds < ROUNDS; rounds++) {
		rc = st->fill(st, now);
		w = sse_send(&st->out, ps->fd);
		if (w < 0) {
			close_stream(p, ps);
			return;
		}
		if (rc < 0) {
			ps->ending = true;
			if (w > 0)
				blocked(p, ps, now);   /* the rest first */
			else
				end_stream(p, ps, now);
			return;
		}
		if (w > 0) {
			blocked(p, ps, now);
			return;
		}
		if (rc == 0)
			return;
	}
	ps->again = true;   /* more waits: after the other streams */
}

/* The client sent bytes (ignored) or left. */
static void readable(struct pump *p, struct pstream *ps, uint32_t ev)
{
	char scratch[512];
	ssize_t n;

	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		close_stream(p, ps);
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
		close_stream(p, ps);
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
static bool take_incoming(struct pump *p)
{
	struct epoll_event ev;
	struct pstream *ps, **grown;
	bool stopping;
	size_t i;

	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->nin; i++) {
		ps = p->incoming[i];
		if (p->nlive == p->caplive) {
			size_t cap = p->caplive ? p->caplive * 2 : 64;

			grown = realloc(p->live, cap * sizeof(*grown));
			if (!grown) {
				/* Keep the rest queued; try next pass. */
				memmove(p->incoming, p->incoming + i,
					(p->nin - i) * sizeof(*p->incoming));
				p->nin -= i;
				goto out;
			}
			p->live = grown;
			p->caplive = cap;
		}
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = ps;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, ps->fd, &ev) != 0) {
			close_stream(p, ps);
			free(ps);
			continue;
		}
		ps->again = true;    /* write its first events, then fill */
		p->live[p->nlive++] = ps;
	}
	p->nin = 0;
out:
	stopping = p->stopping;
	pthread_mutex_unlock(&p->mu);
	return stopping;
}

/* Drop closed streams from the live table. */
static void sweep(struct pump *p)
{
	size_t i, n = 0;

	for (i = 0; i < p->nlive; i++) {
		if (p->live[i]->gone)
			free(p->live[i]);
		else
			p->live[n++] = p->live[i];
	}
	p->nlive = n;
}

/* Milliseconds until the pump must look at a stream again; -1 (no
 * timer) without streams: a new one or the stop kicks the pump. */
static int next_timeout(struct pump *p, int64_t now)
{
	int64_t t = INT64_MAX, due;
	struct pstream *ps;
	size_t i;

	for (i = 0; i < p->nlive; i++) {
		ps = p->live[i];
		if (ps->again)
			return 0;
		due = ps->stall_since ? ps->stall_since + p->stall_ms
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

static void *pump_main(void *arg)
{
	struct pump *p = arg;
	struct epoll_event evs[EVENTS];
	struct pstream *ps;
	bool news = true;
	int64_t now;
	size_t i;
	int n, k;

	while (!take_incoming(p)) {
		now = util_monotonic_ms();
		for (i = 0; i < p->nlive; i++)
			service(p, p->live[i], news, now);
		sweep(p);
		news = false;
		n = epoll_wait(p->ep, evs, EVENTS,
			       next_timeout(p, util_monotonic_ms()));
		for (k = 0; k < n; k++) {
			if (evs[k].data.ptr == &tag_kick) {
				drain(p->kick);
			} else if (evs[k].data.ptr == &tag_hub) {
				drain(hub_wake_fd(p->hub));
				news = true;
			} else {
				ps = evs[k].data.ptr;
				if (!ps->gone &&
				    (evs[k].events & ~(uint32_t)EPOLLOUT))
					readable(p, ps, evs[k].events);
			}
		}
		/* Streams closed by their client stay in the table (gone)
		 * until the next sweep, so event pointers stay valid. */
	}
	/* Stopping: end every stream as far as its socket takes it. */
	now = util_monotonic_ms();
	for (i = 0; i < p->nlive; i++) {
		ps = p->live[i];
		if (!ps->gone && !sse_pending(&ps->st->out))
			end_stream(p, ps, now);
		close_stream(p, ps);
	}
	sweep(p);
	return NULL;
}

/* ---- public ---------------------------------------------------------------- */

int pump_new(struct pump **out, struct hub *h, struct metrics *m,
	     struct err *e)
{
	struct epoll_event ev;
	struct pump *p;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(e, ERR_NOMEM, "out of memory");
	p->hub = h;
	p->metrics = m;
	p->stall_ms = util_env_int("POCKETCTL_STREAM_STALL_MS", PUMP_STALL_MS,
				   100, (int64_t)24 * 3600 * 1000);
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	p->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->ep < 0 || p->kick < 0 || pthread_mutex_init(&p->mu, NULL)) {
		if (p->ep >= 0)
			close(p->ep);
		if (p->kick >= 0)
			close(p->kick);
		free(p);
		return err_set(e, ERR_IO, "cannot set up the stream pump: %s",
			       strerror(errno));
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &tag_kick;
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->kick, &ev) == 0) {
		ev.data.ptr = &tag_hub;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, hub_wake_fd(h), &ev) == 0) {
			*out = p;
			return 0;
		}
	}
	err_set(e, ERR_IO, "cannot set up the stream pump: %s",
		strerror(errno));
	pump_free(p);
	return e->code;
}

int pump_start(struct pump *p, struct err *e)
{
	if (pthread_create(&p->thread, NULL, pump_main, p) != 0)
		return err_set(e, ERR_INTERNAL,
			       "cannot start the stream pump thread");
	p->started = true;
	return 0;
}

int pump_adopt(struct pump *p, int fd, struct sse_stream *st, struct err *e)
{
	struct pstream *ps = calloc(1, sizeof(*ps));
	struct pstream **grown;
	uint64_t one = 1;
	int mine = -1, sp[2] = { -1, -1 }, fl, sndbuf = PUMP_SNDBUF;
	ssize_t w;

	if (!ps)
		return err_set(e, ERR_NOMEM, "out of memory");
	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		err_set(e, ERR_UNAVAILABLE, "the server is stopping");
		goto fail;
	}
	if (p->nin == p->capin) {
		size_t cap = p->capin ? p->capin * 2 : 16;

		grown = realloc(p->incoming, cap * sizeof(*grown));
		if (!grown) {
			err_set(e, ERR_NOMEM, "out of memory");
			goto fail;
		}
		p->incoming = grown;
		p->capin = cap;
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
	p->incoming[p->nin++] = ps;
	atomic_fetch_add(&p->count, 1);
	pthread_mutex_unlock(&p->mu);
	w = write(p->kick, &one, sizeof(one));
	(void)w;
	return 0;
fail:
	pthread_mutex_unlock(&p->mu);
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
	return p ? atomic_load(&p->count) : 0;
}

void pump_stop(struct pump *p)
{
	uint64_t one = 1;
	ssize_t w;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_mutex_unlock(&p->mu);
	w = write(p->kick, &one, sizeof(one));
	(void)w;
	if (p->started && !p->joined) {
		pthread_join(p->thread, NULL);
		p->joined = true;
	}
}

void pump_free(struct pump *p)
{
	size_t i;

	if (!p)
		return;
	pump_stop(p);
	/* Streams adopted after the thread's last look. */
	for (i = 0; i < p->nin; i++) {
		close_stream(p, p->incoming[i]);
		free(p->incoming[i]);
	}
	free(p->incoming);
	free(p->live);
	close(p->ep);
	close(p->kick);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
