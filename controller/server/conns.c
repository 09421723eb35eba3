/*
 * conns.c - the connection guard (see conns.h): a slot per worker
 * connection, and one thread that cuts the slow and, when workers run
 * short, the idle.
 *
 * The slots are a fixed array of the pool's size with a stack of free
 * ones, so opening and closing a connection costs a lock, a pop or push
 * and one pass over the slots to count the address's connections (a few
 * hundred string compares; a connection, not a request, pays it).
 */
#include "conns.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <civetweb.h>

#include "sockfind.h"
#include "util.h"

enum slot_state {
	ST_FREE = 0,
	ST_HEADERS,      /* awaiting a request's headers (the first) */
	ST_BUSY,         /* its handler runs */
	ST_BODY,         /* its handler reads the body */
	ST_IDLE,         /* replied; awaiting the next request */
	ST_DETACHED,     /* a stream the pump owns: never cut */
};

/* In conn_slot.cut beside enum conns_cut: the socket went to the pump
 * (conns_detach()). The guard marks a victim and a worker detaches by
 * compare-and-swap from CONNS_CUT_NONE, so exactly one of them wins. */
#define CUT_DETACHED 100

struct conn_slot {
	_Atomic int state;           /* enum slot_state, by its worker */
	_Atomic int64_t since;       /* util_monotonic_ms() of the state */
	_Atomic int cut;             /* enum conns_cut or CUT_DETACHED */
	/* written under mu (the two flags also read without it, by the
	 * slot's worker: a request costs no lock once they are set) */
	const struct mg_connection *conn; /* civetweb's, while open */
	atomic_bool known;           /* key is filled in (release) */
	atomic_bool over;            /* over the cap */
	struct sockfind_key key;     /* the connection's addresses */
};

/* A connection to cut: the guard's copy of its key and why. */
struct victim {
	struct sockfind_key key;
	int rank;                    /* pressure order (class), then since */
	int64_t since;
	int slot;
	enum conns_cut why;
};

struct conns {
	struct conns_options o;
	struct conn_slot *slots;     /* o.pool of them */
	int *free_stack, nfree;      /* under mu */
	int low;                     /* free workers below this: shed */
	struct victim *victims;      /* the guard thread's scratch, */
	struct sockfind_key *keys;   /* o.pool of each */

	pthread_mutex_t mu;
	pthread_cond_t cv;           /* wakes the guard (pressure, stop) */
	bool stopping;               /* under mu */
	bool wake;                   /* under mu: short of workers, look now
	                              * (also when the signal came while the
	                              * guard was cutting) */
	bool asleep;                 /* under mu: the guard waits with no
	                              * round due (no connection holds a
	                              * worker); conns_open() wakes it */
	bool started;
	pthread_t thread;

	_Atomic int64_t over_cap;
	_Atomic int64_t cuts[4];
};

static void set_state(struct conn_slot *s, enum slot_state st)
{
	atomic_store_explicit(&s->since, util_monotonic_ms(),
			      memory_order_relaxed);
	atomic_store_explicit(&s->state, st, memory_order_release);
}

/* Free c and its arrays (but not its mutex and condvar). */
static void free_arrays(struct conns *c)
{
	free(c->slots);
	free(c->free_stack);
	free(c->victims);
	free(c->keys);
	free(c);
}

int conns_new(struct conns **out, const struct conns_options *o,
	      struct err *e)
{
	struct conns *c = NULL;
	pthread_condattr_t ca;
	int i;

	*out = NULL;
	if (o->pool < 1)
		return err_set(e, ERR_INVALID, "the worker pool is empty");
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(e, ERR_NOMEM, "out of memory");
	c->o = *o;
	c->slots = calloc((size_t)o->pool, sizeof(*c->slots));
	c->free_stack = calloc((size_t)o->pool, sizeof(*c->free_stack));
	c->victims = calloc((size_t)o->pool, sizeof(*c->victims));
	c->keys = calloc((size_t)o->pool, sizeof(*c->keys));
	if (!c->slots || !c->free_stack || !c->victims || !c->keys) {
		free_arrays(c);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	for (i = 0; i < o->pool; i++)
		c->free_stack[i] = o->pool - 1 - i;
	c->nfree = o->pool;
	c->low = o->pool / 16 > 4 ? o->pool / 16 : 4;
	if (c->low > o->pool / 2)
		c->low = o->pool / 2;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = c;
	return 0;
}

struct conn_slot *conns_open(struct conns *c,
			     const struct mg_connection *conn)
{
	struct conn_slot *s;

	if (!c)
		return NULL;
	pthread_mutex_lock(&c->mu);
	if (!c->nfree) {
		pthread_mutex_unlock(&c->mu);
		return NULL;
	}
	s = &c->slots[c->free_stack[--c->nfree]];
	s->conn = conn;
	atomic_store(&s->known, false);
	atomic_store(&s->over, false);
	memset(&s->key, 0, sizeof(s->key));
	atomic_store(&s->cut, CONNS_CUT_NONE);
	set_state(s, ST_HEADERS);
	if ((c->nfree < c->low || c->asleep) && !c->wake) {
		c->wake = true;
		pthread_cond_signal(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return s;
}

/*
 * Under mu: fill s's addresses from ri and mark it over the cap when its
 * address already holds max_per_ip connections (not counting those over
 * the cap themselves).
 */
static void learn(struct conns *c, struct conn_slot *s,
		  const struct mg_request_info *ri)
{
	int i, same = 0;

	snprintf(s->key.addr, sizeof(s->key.addr), "%s", ri->remote_addr);
	s->key.port = ri->remote_port;
	s->key.local_port = ri->server_port;
	if (c->o.max_per_ip > 0) {
		for (i = 0; i < c->o.pool; i++) {
			struct conn_slot *o = &c->slots[i];

			if (o != s && atomic_load(&o->known) &&
			    !atomic_load(&o->over) &&
			    atomic_load(&o->state) != ST_FREE &&
			    !strcmp(o->key.addr, s->key.addr))
				same++;
		}
		if (same >= c->o.max_per_ip) {
			atomic_store(&s->over, true);
			atomic_fetch_add(&c->over_cap, 1);
		}
	}
	atomic_store(&s->known, true);   /* after over: see conns_request() */
}

void conns_close(struct conns *c, struct conn_slot *s)
{
	if (!c || !s)
		return;
	pthread_mutex_lock(&c->mu);
	atomic_store(&s->state, ST_FREE);
	s->conn = NULL;
	atomic_store(&s->known, false);
	atomic_store(&s->over, false);
	c->free_stack[c->nfree++] = (int)(s - c->slots);
	pthread_mutex_unlock(&c->mu);
}

bool conns_request(struct conns *c, struct conn_slot *s,
		   const struct mg_request_info *ri)
{
	bool over;

	if (!c || !s)
		return false;
	set_state(s, ST_BUSY);
	if (atomic_load(&s->known))
		return atomic_load(&s->over);
	pthread_mutex_lock(&c->mu);
	if (!atomic_load(&s->known))
		learn(c, s, ri);
	over = atomic_load(&s->over);
	pthread_mutex_unlock(&c->mu);
	return over;
}

void conns_body(struct conn_slot *s, bool reading)
{
	if (s)
		set_state(s, reading ? ST_BODY : ST_BUSY);
}

/* Set s's cut word to cut (a conns_cut or CUT_DETACHED) when nothing has
 * claimed the slot yet: the guard's mark and the worker's hand-off meet
 * here, and only one of them wins. */
static bool claim(struct conn_slot *s, int cut)
{
	int none = CONNS_CUT_NONE;

	return atomic_compare_exchange_strong(&s->cut, &none, cut);
}

bool conns_detach(struct conn_slot *s)
{
	return !s || claim(s, CUT_DETACHED);
}

void conns_reply(struct conn_slot *s, bool detached)
{
	int was = CUT_DETACHED;

	if (!s)
		return;
	/* Detached for a stream that did not start after all (its request
	 * failed): an ordinary connection again, that the guard may cut. */
	if (!detached)
		atomic_compare_exchange_strong(&s->cut, &was, CONNS_CUT_NONE);
	set_state(s, detached ? ST_DETACHED : ST_IDLE);
}

enum conns_cut conns_was_cut(const struct conn_slot *s)
{
	int cut = s ? atomic_load(&s->cut) : CONNS_CUT_NONE;

	return cut == CUT_DETACHED ? CONNS_CUT_NONE : (enum conns_cut)cut;
}

int conns_max_per_ip(const struct conns *c)
{
	return c ? c->o.max_per_ip : 0;
}

void conns_get_stats(struct conns *c, struct conns_stats *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	out->open = c->o.pool - c->nfree;
	pthread_mutex_unlock(&c->mu);
	out->over_cap = atomic_load(&c->over_cap);
	for (i = 1; i < 4; i++)
		out->cut[i] = atomic_load(&c->cuts[i]);
}

/* ---- the guard thread ------------------------------------------------ */

/* The pressure class of a slot in state st (lower goes first), -1 when it
 * is never cut for room. */
static int pressure_rank(const struct conn_slot *s, int st, int64_t age)
{
	if (atomic_load(&s->over) && (st == ST_HEADERS || st == ST_IDLE))
		return 0;
	if (st == ST_IDLE)
		return 1;
	if (st == ST_HEADERS)
		return 2;
	if (st == ST_BODY && age >= CONNS_SHED_BODY_MIN_MS)
		return 3;
	return -1;
}

static int by_rank(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank - y->rank;
	return (x->since > y->since) - (x->since < y->since);
}

/*
 * Under mu: the addresses of a connection that sent no complete request
 * yet, from its worker's struct. civetweb fills them before
 * init_connection and leaves them while the connection is open (it is:
 * conns_close() waits for mu); mg_get_request_info() answers once the
 * worker marked the connection a request, right after init_connection,
 * hence the few milliseconds' wait.
 */
static void learn_late(struct conns *c, struct conn_slot *s, int64_t now)
{
	const struct mg_request_info *ri;

	if (now - atomic_load(&s->since) < CONNS_LEARN_AFTER_MS)
		return;
	ri = mg_get_request_info(s->conn);
	if (ri)
		learn(c, s, ri);
}

/* Slot i when it is open, its addresses known and not cut yet (its state
 * and time into *st and *since), else NULL. */
static struct conn_slot *cuttable(struct conns *c, int i, int *st,
				  int64_t *since)
{
	struct conn_slot *s = &c->slots[i];

	*st = atomic_load_explicit(&s->state, memory_order_acquire);
	if (*st == ST_FREE || !atomic_load(&s->known) ||
	    atomic_load(&s->cut) != CONNS_CUT_NONE)
		return NULL;
	*since = atomic_load_explicit(&s->since, memory_order_relaxed);
	return s;
}

/*
 * Under mu: choose the connections to cut now into c->victims, marking
 * their slots cut. Returns how many; *held: connections holding a worker
 * that may still need cutting (not handed to the pump).
 */
static int choose(struct conns *c, int64_t now, int *held)
{
	struct victim *v = c->victims;
	int i, n = 0, ncand, st, rank, freeing = c->nfree;
	int64_t since, age;
	struct conn_slot *s;

	*held = 0;
	for (i = 0; i < c->o.pool; i++) {
		s = &c->slots[i];
		st = atomic_load(&s->state);
		if (st == ST_FREE)
			continue;
		*held += atomic_load(&s->cut) != CUT_DETACHED;
		/* Connections already cut, or handed to the pump, free their
		 * workers any moment now. */
		if (atomic_load(&s->cut) != CONNS_CUT_NONE)
			freeing++;
		else if (!atomic_load(&s->known))
			learn_late(c, s, now);
	}
	/* The deadlines first, whatever the pressure. */
	for (i = 0; i < c->o.pool; i++) {
		enum conns_cut why = CONNS_CUT_NONE;

		s = cuttable(c, i, &st, &since);
		if (!s)
			continue;
		age = now - since;
		if ((st == ST_HEADERS || st == ST_IDLE) &&
		    age > c->o.header_ms)
			why = CONNS_CUT_DEADLINE;
		else if (st == ST_BODY && age > c->o.body_ms)
			why = CONNS_CUT_DEADLINE;
		else if (atomic_load(&s->over) && st == ST_HEADERS &&
			 age > CONNS_OVER_GRACE_MS)
			why = CONNS_CUT_OVER_CAP;
		if (why == CONNS_CUT_NONE)
			continue;
		if (!claim(s, (int)why))
			continue;
		v[n] = (struct victim){ .key = s->key, .slot = i, .why = why };
		freeing++;
		n++;
	}
	if (freeing >= c->low)
		return n;
	/* Short of workers: the candidates after the victims, best first. */
	ncand = n;
	for (i = 0; i < c->o.pool; i++) {
		s = cuttable(c, i, &st, &since);
		if (!s)
			continue;
		rank = pressure_rank(s, st, now - since);
		if (rank < 0)
			continue;
		v[ncand++] = (struct victim){ .key = s->key, .slot = i,
					      .rank = rank, .since = since,
					      .why = CONNS_CUT_PRESSURE };
	}
	qsort(v + n, (size_t)(ncand - n), sizeof(*v), by_rank);
	for (i = n; i < ncand && freeing < 2 * c->low; i++) {
		if (!claim(&c->slots[v[i].slot], CONNS_CUT_PRESSURE))
			continue;
		v[n++] = v[i];
		freeing++;
	}
	return n;
}

/* Outside mu: shut the chosen connections' reading side. */
static void cut(struct conns *c, int n)
{
	struct sockfind_key *keys = c->keys;
	int i;

	for (i = 0; i < n; i++)
		keys[i] = c->victims[i].key;
	if (sockfind_scan(keys, n) == 0)
		for (i = 0; i < n; i++) {
			if (keys[i].matches != 1)
				continue;   /* closed meanwhile */
			/* The worker's read sees end of file at once (bytes
			 * already received are still read first). */
			shutdown(keys[i].fd, SHUT_RD);
			atomic_fetch_add(&c->cuts[c->victims[i].why], 1);
		}
}

static void *guard_main(void *arg)
{
	struct conns *c = arg;
	struct timespec ts;
	int64_t next;
	int n, held = 1;

	pthread_mutex_lock(&c->mu);
	while (!c->stopping) {
		next = util_monotonic_ms() + CONNS_SWEEP_MS;
		ts.tv_sec = next / 1000;
		ts.tv_nsec = (long)(next % 1000) * 1000000L;
		/* Rounds only while some connection holds a worker: an idle
		 * server, or one whose connections are all streams the pump
		 * owns, has no deadline to watch and sleeps until the next
		 * connection opens. */
		if (!c->wake && held)
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		else if (!c->wake) {
			c->asleep = true;
			pthread_cond_wait(&c->cv, &c->mu);
			c->asleep = false;
		}
		if (c->stopping)
			break;
		c->wake = false;
		n = choose(c, util_monotonic_ms(), &held);
		if (!n)
			continue;
		pthread_mutex_unlock(&c->mu);
		cut(c, n);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int conns_start(struct conns *c, struct err *e)
{
	if (pthread_create(&c->thread, NULL, guard_main, c) != 0)
		return err_set(e, ERR_INTERNAL,
			       "cannot start the connection guard thread");
	c->started = true;
	return 0;
}

void conns_free(struct conns *c)
{
	if (!c)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->mu);
		c->stopping = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thread, NULL);
	}
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free_arrays(c);
}
