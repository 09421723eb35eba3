/*
 * hub.c - the change-log hub (see hub.h): a tail thread that copies new
 * change-log rows into a ring of reference-counted entries, and the calls
 * SSE streams use to wait for, fetch and format them.
 *
 * Revisions are gap-free, so the ring is indexed by revision modulo its
 * size and holds exactly the revisions [lo, hi]. A fetch below lo falls
 * back to the store, and a hole in what the store returns (the change log
 * was trimmed past the cursor) is reported as HUB_GAP, never skipped.
 *
 * A thousand streams wake for every change, so waking must neither convoy
 * nor run on one core: streams sleep on futex words, check the published
 * head (an atomic) without a lock, and read the ring under a reader-writer
 * lock that only the tail thread takes for writing (a condition variable
 * would make every woken stream queue for its mutex in turn). Waking a
 * thread costs the waker several microseconds, so the sleepers are spread
 * over WAKE_BUCKETS futex words and the wake-ups themselves fan out: the
 * tail thread and every stream it woke take bucket numbers from one
 * counter and wake those buckets, so a thousand wake-ups run on every core
 * at once instead of one after the other on the tail thread's.
 */
#include "hub.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "actor.h"
#include "log.h"
#include "util.h"

#define INGEST_BATCH 256          /* change-log rows read per walk */
#define ENTRY_OVERHEAD 512        /* bytes counted per entry besides JSON */
#define CACHE_FACTOR 3            /* cached variants, relative to the JSON */
#define CLIENT_BUCKETS 256        /* hash buckets of the client table */
#define WAKE_BUCKETS 32           /* futex words streams sleep on */
#define HOT_MS 60000              /* a slot used this recently is hot */
#define HOT_TOUCH_MS 1000         /* how often a stream refreshes that */

struct hub {
	struct store *store;              /* borrowed */
	const struct schema *schema;      /* borrowed */
	const atomic_bool *stopping;      /* borrowed, nullable */

	/* ring: guarded by rw (written by the tail thread only) */
	pthread_rwlock_t rw;
	struct hub_entry *ring[HUB_RING_MAX];
	int64_t lo, hi;                   /* ring holds [lo, hi]; lo = hi + 1
	                                   * when empty */
	size_t bytes;

	/* wake-ups: lock-free */
	_Atomic int64_t pub_hi;           /* hi, readable without rw */
	_Atomic uint32_t seq;             /* bumped on publish and on stop */
	_Atomic uint32_t bucket[WAKE_BUCKETS]; /* = seq, one word per bucket */
	_Atomic uint32_t asleep[WAKE_BUCKETS]; /* streams in hub_wait() there */
	_Atomic uint32_t wake_next;       /* next bucket to wake this round */
	_Atomic unsigned nsleepers;       /* for assigning buckets */
	_Atomic bool stop;
	int wake_fd[HUB_WAKE_FDS];        /* eventfds, the first nwake made
	                                   * by hub_wake_fd() */
	_Atomic int nwake;                /* written per round */

	/* notifications to the tail thread: guarded by nmu */
	pthread_mutex_t nmu;
	pthread_cond_t ncond;
	bool pending;
	bool stop_req;

	/* streams open now (hub_set_listeners()); NULL: always ingest */
	int (*listeners)(void *arg);
	void *listeners_arg;

	pthread_t thread;
	bool started;
	bool joined;
	bool hooked;                      /* commit hook registered */

	/* formats the streams used lately, run ahead by the tail thread */
	_Atomic(hub_format_fn) fmt[HUB_CACHE_SLOTS];
	void *_Atomic fmt_arg[HUB_CACHE_SLOTS];
	_Atomic int64_t fmt_used_ms[HUB_CACHE_SLOTS];

	/* named streams: guarded by cmu */
	pthread_mutex_t cmu;
	struct hub_client *clients[CLIENT_BUCKETS];
	size_t nclients;
};

struct hub_client {
	struct hub_client *next;
	void *ptr;
	char id[];
};

/* ---- time ------------------------------------------------------------- */

/*
 * Take bucket numbers for this round and wake those buckets, at most max
 * of them (the tail thread takes them all; a woken stream helps with two).
 * Every bucket is woken once per round by whoever took its number, with
 * a system call only when a stream waits there: most streams wait in the
 * pump's epoll instead, and 32 futex calls per publish were about one
 * per create. The word is stored before asleep is read, and a sleeper
 * counts itself in before it reads the word (both sequentially
 * consistent): a sleeper the waker does not see reads the new word, and
 * FUTEX_WAIT on the old value then returns at once.
 */
static void wake_buckets(struct hub *h, int max)
{
	uint32_t i;

	while (max-- > 0) {
		i = atomic_fetch_add(&h->wake_next, 1);
		if (i >= WAKE_BUCKETS)
			return;
		if (atomic_load(&h->asleep[i]) > 0)
			util_futex_wake(&h->bucket[i]);
	}
}

/* A new round: change every bucket's word (so no stream goes to sleep on
 * the old value), then wake them all, helped by the streams woken first. */
static void wake_streams(struct hub *h)
{
	uint32_t seq = atomic_fetch_add(&h->seq, 1) + 1;
	int i;

	uint64_t one = 1;
	ssize_t n;
	int nwake = atomic_load(&h->nwake);

	for (i = 0; i < WAKE_BUCKETS; i++)
		atomic_store(&h->bucket[i], seq);
	atomic_store(&h->wake_next, 0);
	wake_buckets(h, WAKE_BUCKETS);
	/* The pump lanes' epolls; a full counter (EAGAIN) is a pending
	 * wake. */
	for (i = 0; i < nwake; i++) {
		n = write(h->wake_fd[i], &one, sizeof(one));
		(void)n;
	}
}

/* The bucket the calling thread sleeps in: fixed per thread, assigned
 * round-robin on first use. */
static _Thread_local int my_bucket = -1;

static int bucket_of_thread(struct hub *h)
{
	if (my_bucket < 0)
		my_bucket = (int)(atomic_fetch_add(&h->nsleepers, 1) %
				  WAKE_BUCKETS);
	return my_bucket;
}

/* Absolute CLOCK_MONOTONIC time for a util_monotonic_ms() deadline. */
static struct timespec abs_ms(int64_t ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	return ts;
}

static int cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int rc;

	if (pthread_condattr_init(&a))
		return -1;
	rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (!rc)
		rc = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return rc ? -1 : 0;
}

/* ---- entries ---------------------------------------------------------- */

static void entry_free(struct hub_entry *en)
{
	int i;

	if (!en)
		return;
	for (i = 0; i < HUB_CACHE_SLOTS; i++)
		free(en->cache[i]);
	json_decref(en->record);
	free(en->name);
	free(en->actor);
	free(en->actor_public);
	pthread_mutex_destroy(&en->lock);
	free(en);
}

static void entry_put(struct hub_entry *en)
{
	if (en && atomic_fetch_sub(&en->refs, 1) == 1)
		entry_free(en);
}

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

/*
 * A new entry (one reference, owned by the caller) for change c; its
 * record is shared with c by reference. NULL on allocation failure.
 */
static struct hub_entry *entry_new(struct hub *h, const struct store_change *c)
{
	struct hub_entry *en;
	const char *name, *owner = NULL;
	json_t *data;

	en = calloc(1, sizeof(*en));
	if (!en)
		return NULL;
	if (pthread_mutex_init(&en->lock, NULL)) {
		free(en);
		return NULL;
	}
	atomic_init(&en->refs, 1);
	en->revision = c->revision;
	en->status_only = c->status_only;
	copy_str(en->action, sizeof(en->action), c->action);
	copy_str(en->collection, sizeof(en->collection), c->collection);
	copy_str(en->id, sizeof(en->id), c->id);
	en->hub = h;
	en->coll = schema_find(h->schema, en->collection);
	en->record = json_incref(c->record);
	name = json_string_value(json_object_get(c->record, "name"));
	en->name = strdup(name ? name : "");
	if (c->actor) {
		char pub[STORE_WRITER_MAX];

		en->actor = strdup(c->actor);
		en->actor_public = strdup(actor_public(c->actor, pub,
						       sizeof(pub)));
		actor_user_id(c->actor, en->actor_user);
	}
	if (!en->name || (c->actor && (!en->actor || !en->actor_public))) {
		entry_free(en);
		return NULL;
	}
	data = json_object_get(c->record, "data");
	if (en->coll && en->coll->auth)
		owner = en->id;
	else if (en->coll && en->coll->owner_field)
		owner = json_string_value(json_object_get(data,
						en->coll->owner_field));
	copy_str(en->owner, sizeof(en->owner), owner);
	/* The stored text's length: what dumping the record again gives. */
	en->bytes = ENTRY_OVERHEAD + CACHE_FACTOR * c->record_len +
		    (c->actor ? 2 * strlen(c->actor) : 0);
	return en;
}

void hub_entries_put(struct hub_entry **en, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		entry_put(en[i]);
		en[i] = NULL;
	}
}

/*
 * Remember that slot is in use and how it is formatted, so the tail thread
 * formats it for new entries before any stream asks: a thousand streams
 * then find it ready instead of queueing for the entry's lock. The use
 * time is refreshed at most once a second per slot, to keep the shared
 * cache line quiet.
 */
static void note_use(struct hub *h, int slot, hub_format_fn fn, void *arg)
{
	int64_t now = util_monotonic_ms();

	if (now - atomic_load_explicit(&h->fmt_used_ms[slot],
				       memory_order_relaxed) < HOT_TOUCH_MS)
		return;
	atomic_store(&h->fmt_arg[slot], arg);
	atomic_store(&h->fmt[slot], fn);
	atomic_store(&h->fmt_used_ms[slot], now);
}

const char *hub_entry_cache(struct hub_entry *en, int slot, hub_format_fn fn,
			    void *arg, size_t *len)
{
	char *out, *made;
	size_t n = 0;

	if (slot < 0 || slot >= HUB_CACHE_SLOTS)
		return NULL;
	if (en->hub)
		note_use(en->hub, slot, fn, arg);
	/* Formatted already: no lock (the length was stored before the
	 * pointer was released). */
	out = atomic_load_explicit(&en->cache[slot], memory_order_acquire);
	if (!out) {
		pthread_mutex_lock(&en->lock);
		out = atomic_load_explicit(&en->cache[slot],
					   memory_order_relaxed);
		if (!out) {
			made = fn(en, en->record, arg, &n);
			if (made) {
				en->cache_len[slot] = n;
				atomic_store_explicit(&en->cache[slot], made,
						      memory_order_release);
			}
			out = made;
		}
		pthread_mutex_unlock(&en->lock);
	}
	if (len)
		*len = out ? en->cache_len[slot] : 0;
	return out;
}

/* ---- the ring (all under h->rw, for writing) ------------------------------ */

static struct hub_entry **slot_of(struct hub *h, int64_t rev)
{
	return &h->ring[(uint64_t)rev % HUB_RING_MAX];
}

static void ring_evict_lo(struct hub *h)
{
	struct hub_entry **p = slot_of(h, h->lo);

	if (*p) {
		h->bytes -= (*p)->bytes;
		entry_put(*p);
		*p = NULL;
	}
	h->lo++;
}

static void ring_clear(struct hub *h)
{
	while (h->lo <= h->hi)
		ring_evict_lo(h);
}

/* Append en (taking over the caller's reference). */
static void ring_push(struct hub *h, struct hub_entry *en)
{
	if (en->revision != h->hi + 1) {
		/* The log was trimmed past us (or the store was replaced):
		 * start over at en; streams behind it get HUB_GAP. */
		ring_clear(h);
		h->lo = en->revision;
	}
	if (h->hi - h->lo + 1 >= HUB_RING_MAX)
		ring_evict_lo(h);
	*slot_of(h, en->revision) = en;
	h->hi = en->revision;
	h->bytes += en->bytes;
	while (h->bytes > HUB_RING_BYTES && h->lo < h->hi)
		ring_evict_lo(h);
}

/* ---- the tail thread ---------------------------------------------------- */

struct batch {
	struct hub *h;
	struct hub_entry *en[INGEST_BATCH];
	int n;
};

static int ingest_one(const struct store_change *c, void *arg)
{
	struct batch *b = arg;
	struct hub_entry *en;

	if (b->n >= INGEST_BATCH)
		return 1;
	en = entry_new(b->h, c);
	if (!en)
		return ERR_NOMEM;
	b->en[b->n++] = en;
	return 0;
}

/* Fill the hot slots of new (unpublished) entries. */
static void preformat(struct hub *h, struct hub_entry **en, int n)
{
	int64_t now = util_monotonic_ms();
	hub_format_fn fn;
	int slot, i;

	for (slot = 0; slot < HUB_CACHE_SLOTS; slot++) {
		fn = atomic_load(&h->fmt[slot]);
		if (!fn || now - atomic_load(&h->fmt_used_ms[slot]) > HOT_MS)
			continue;
		for (i = 0; i < n; i++)
			hub_entry_cache(en[i], slot, fn,
					atomic_load(&h->fmt_arg[slot]), NULL);
	}
}

/*
 * No stream is open: publish head without reading the changes up to it,
 * leaving the ring empty (a stream reads them from the store, see
 * hub_fetch()). Under load without streams, reading and parsing every
 * change here was about 9 % of the server's CPU.
 */
static void skip_to(struct hub *h, int64_t head)
{
	pthread_rwlock_wrlock(&h->rw);
	ring_clear(h);
	h->lo = head + 1;
	h->hi = head;
	atomic_store(&h->pub_hi, head);
	pthread_rwlock_unlock(&h->rw);
	wake_streams(h);   /* one that is just opening may wait already */
}

/*
 * Read the rows after the published head into the ring. Returns 1 when a
 * full batch was read (there may be more), 0 when caught up, -1 on error.
 */
static int ingest(struct hub *h)
{
	struct batch b;
	struct err e = ERR_INIT;
	int64_t after, head;
	int rc, i;

	memset(&b, 0, sizeof(b));
	b.h = h;
	after = atomic_load(&h->pub_hi);   /* only this thread writes it */
	head = store_head(h->store);
	if (head <= after)
		return 0;
	if (h->listeners && h->listeners(h->listeners_arg) == 0) {
		skip_to(h, head);
		return 0;
	}
	rc = store_changes(h->store, after, INGEST_BATCH, ingest_one, &b, &e);
	if (rc < 0) {
		log_msg(LOG_ERROR, "hub", "%s",
			e.msg[0] ? e.msg : "cannot read the change log");
		hub_entries_put(b.en, b.n);
		return -1;
	}
	if (b.n == 0)
		return 0;
	preformat(h, b.en, b.n);
	pthread_rwlock_wrlock(&h->rw);
	for (i = 0; i < b.n; i++)
		ring_push(h, b.en[i]);
	atomic_store(&h->pub_hi, h->hi);
	pthread_rwlock_unlock(&h->rw);
	wake_streams(h);
	return b.n == INGEST_BATCH ? 1 : 0;
}

static bool stop_wanted(struct hub *h)
{
	bool r;

	if (h->stopping && atomic_load(h->stopping))
		return true;
	pthread_mutex_lock(&h->nmu);
	r = h->stop_req;
	pthread_mutex_unlock(&h->nmu);
	return r;
}

static void *tail_main(void *arg)
{
	struct hub *h = arg;
	int more = 0;

	while (!stop_wanted(h)) {
		pthread_mutex_lock(&h->nmu);
		h->pending = false;
		pthread_mutex_unlock(&h->nmu);
		more = ingest(h);
		if (more > 0)
			continue;
		/* Caught up: sleep until a commit (hub_notify()) or
		 * hub_stop(), with no timer, so an idle server does not
		 * wake for nothing; failed: retry after HUB_IDLE_WAKE_MS. A
		 * commit after the head read above set pending again, so no
		 * notification is lost. */
		pthread_mutex_lock(&h->nmu);
		if (!h->pending && !h->stop_req && more < 0) {
			struct timespec ts = abs_ms(util_monotonic_ms() +
						    HUB_IDLE_WAKE_MS);

			pthread_cond_timedwait(&h->ncond, &h->nmu, &ts);
		} else if (!h->pending && !h->stop_req) {
			pthread_cond_wait(&h->ncond, &h->nmu);
		}
		pthread_mutex_unlock(&h->nmu);
	}
	atomic_store(&h->stop, true);
	wake_streams(h);
	return NULL;
}

/* ---- public ---------------------------------------------------------------- */

void hub_set_listeners(struct hub *h, int (*count)(void *arg), void *arg)
{
	h->listeners = count;
	h->listeners_arg = arg;
}

int hub_new(struct hub **out, struct store *store, const struct schema *schema,
	    const atomic_bool *stopping, struct err *e)
{
	struct hub *h;
	bool rw = false, nmu = false, cmu = false, ncond = false;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return err_set(e, ERR_NOMEM, "out of memory");
	h->store = store;
	h->schema = schema;
	h->stopping = stopping;
	atomic_init(&h->nwake, 0);
	rw = pthread_rwlock_init(&h->rw, NULL) == 0;
	nmu = pthread_mutex_init(&h->nmu, NULL) == 0;
	cmu = pthread_mutex_init(&h->cmu, NULL) == 0;
	ncond = cond_init_monotonic(&h->ncond) == 0;
	if (!rw || !nmu || !cmu || !ncond)
		goto fail;
	h->hi = store_head(store);
	h->lo = h->hi + 1;
	atomic_init(&h->pub_hi, h->hi);
	atomic_init(&h->seq, 0);
	atomic_init(&h->wake_next, WAKE_BUCKETS);
	atomic_init(&h->nsleepers, 0);
	atomic_init(&h->stop, false);
	*out = h;
	return 0;
fail:
	if (ncond)
		pthread_cond_destroy(&h->ncond);
	if (cmu)
		pthread_mutex_destroy(&h->cmu);
	if (nmu)
		pthread_mutex_destroy(&h->nmu);
	if (rw)
		pthread_rwlock_destroy(&h->rw);
	free(h);
	return err_set(e, ERR_INTERNAL, "cannot set up the hub's locks");
}

/* The store's commit hook: runs on the committing thread. */
static void commit_hook(void *arg, int64_t head)
{
	(void)head;
	hub_notify(arg);
}

int hub_start(struct hub *h, struct err *e)
{
	int rc;

	if (h->started)
		return 0;
	rc = store_add_commit_hook(h->store, commit_hook, h, e);
	if (rc)
		return rc;
	h->hooked = true;
	pthread_rwlock_wrlock(&h->rw);
	h->hi = store_head(h->store);
	h->lo = h->hi + 1;
	atomic_store(&h->pub_hi, h->hi);
	pthread_rwlock_unlock(&h->rw);
	rc = pthread_create(&h->thread, NULL, tail_main, h);
	if (rc) {
		store_remove_commit_hook(h->store, commit_hook, h);
		h->hooked = false;
		return err_set(e, ERR_INTERNAL, "cannot start the hub thread: %s",
			       strerror(rc));
	}
	h->started = true;
	return 0;
}

void hub_stop(struct hub *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->nmu);
	h->stop_req = true;
	pthread_cond_signal(&h->ncond);
	pthread_mutex_unlock(&h->nmu);
	if (h->started && !h->joined) {
		pthread_join(h->thread, NULL);
		h->joined = true;
	}
	atomic_store(&h->stop, true);
	wake_streams(h);
}

void hub_free(struct hub *h)
{
	struct hub_client *c, *next;
	size_t i;
	int k;

	if (!h)
		return;
	hub_stop(h);
	if (h->hooked)
		store_remove_commit_hook(h->store, commit_hook, h);
	ring_clear(h);
	for (i = 0; i < CLIENT_BUCKETS; i++) {
		for (c = h->clients[i]; c; c = next) {
			next = c->next;
			free(c);
		}
	}
	pthread_mutex_destroy(&h->cmu);
	pthread_cond_destroy(&h->ncond);
	pthread_mutex_destroy(&h->nmu);
	pthread_rwlock_destroy(&h->rw);
	for (k = atomic_load(&h->nwake); k-- > 0;)
		close(h->wake_fd[k]);
	free(h);
}

int hub_wake_fd(struct hub *h, int i)
{
	int n = atomic_load(&h->nwake), fd;

	if (i < 0 || i >= HUB_WAKE_FDS) {
		errno = EINVAL;
		return -1;
	}
	/* Made in order by the owning thread; each is stored before the
	 * count that makes the tail thread write it at every round. */
	while (n <= i) {
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			return -1;
		h->wake_fd[n++] = fd;
		atomic_store(&h->nwake, n);
	}
	return h->wake_fd[i];
}

void hub_notify(struct hub *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->nmu);
	h->pending = true;
	pthread_cond_signal(&h->ncond);
	pthread_mutex_unlock(&h->nmu);
}

int64_t hub_head(struct hub *h)
{
	return atomic_load(&h->pub_hi);
}

int hub_wait(struct hub *h, int64_t after, int64_t deadline_ms)
{
	int b = bucket_of_thread(h);
	_Atomic uint32_t *word = &h->bucket[b];
	bool slept = false;
	uint32_t seq;
	int rc;

	atomic_fetch_add(&h->asleep[b], 1);   /* before the word: see above */
	for (;;) {
		/* Read the word first: a publish after these checks changes
		 * it, and the futex then refuses to sleep. */
		seq = atomic_load(word);
		if (atomic_load(&h->stop)) {
			rc = HUB_STOPPED;
			break;
		}
		if (atomic_load(&h->pub_hi) > after) {
			rc = 1;
			break;
		}
		if (util_monotonic_ms() >= deadline_ms) {
			rc = 0;
			break;
		}
		util_futex_wait(word, seq, deadline_ms);
		slept = true;
	}
	atomic_fetch_sub(&h->asleep[b], 1);
	if (rc == 1 && slept)
		wake_buckets(h, 2);   /* pass it on */
	return rc;
}

struct fetch {
	struct hub *h;
	struct hub_entry **out;
	int max, n;
	int64_t next;       /* the revision expected next */
	bool gap;
};

static int fetch_one(const struct store_change *c, void *arg)
{
	struct fetch *f = arg;
	struct hub_entry *en;

	if (c->revision != f->next) {
		f->gap = true;
		return 1;
	}
	en = entry_new(f->h, c);
	if (!en)
		return ERR_NOMEM;
	f->out[f->n++] = en;
	f->next++;
	return f->n >= f->max ? 1 : 0;
}

int hub_fetch(struct hub *h, int64_t after, struct hub_entry **out, int max,
	      struct err *e)
{
	struct fetch f;
	int64_t lo, hi, rev;
	int n = 0, rc;

	if (max <= 0)
		return 0;
	pthread_rwlock_rdlock(&h->rw);
	lo = h->lo;
	hi = h->hi;
	if (after + 1 >= lo) {
		for (rev = after + 1; rev <= hi && n < max; rev++) {
			struct hub_entry *en = *slot_of(h, rev);

			atomic_fetch_add(&en->refs, 1);
			out[n++] = en;
		}
	}
	pthread_rwlock_unlock(&h->rw);
	if (after + 1 >= lo)
		return n;

	/* Behind the ring: read the store. */
	memset(&f, 0, sizeof(f));
	f.h = h;
	f.out = out;
	f.max = max;
	f.next = after + 1;
	rc = store_changes(h->store, after, max, fetch_one, &f, e);
	if (rc < 0) {
		hub_entries_put(out, f.n);
		return rc;
	}
	if (f.gap || (f.n == 0 && after < hi)) {
		hub_entries_put(out, f.n);
		return HUB_GAP;
	}
	return f.n;
}

/* ---- named streams ------------------------------------------------------ */

/* FNV-1a: ids are random, any spread will do. */
static size_t bucket_of(const char *id)
{
	return util_hash(id, strlen(id), UTIL_HASH_INIT) % CLIENT_BUCKETS;
}

int hub_client_add(struct hub *h, const char *id, void *ptr, struct err *e)
{
	struct hub_client *c, *o, **head;
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n >= HUB_CLIENT_ID_MAX)
		return err_set(e, ERR_INVALID,
			       "a stream id must have 1 to %d bytes",
			       HUB_CLIENT_ID_MAX - 1);
	c = malloc(sizeof(*c) + n + 1);
	if (!c)
		return err_set(e, ERR_NOMEM, "out of memory");
	memcpy(c->id, id, n + 1);
	c->ptr = ptr;
	head = &h->clients[bucket_of(id)];
	pthread_mutex_lock(&h->cmu);
	for (o = *head; o; o = o->next) {
		if (!strcmp(o->id, id)) {
			pthread_mutex_unlock(&h->cmu);
			free(c);
			return err_set(e, ERR_CONFLICT,
				       "stream id '%s' is taken", id);
		}
	}
	c->next = *head;
	*head = c;
	h->nclients++;
	pthread_mutex_unlock(&h->cmu);
	return 0;
}

void hub_client_remove(struct hub *h, const char *id)
{
	struct hub_client **p, *c = NULL;

	if (!id)
		return;
	pthread_mutex_lock(&h->cmu);
	for (p = &h->clients[bucket_of(id)]; *p; p = &(*p)->next) {
		if (!strcmp((*p)->id, id)) {
			c = *p;
			*p = c->next;
			h->nclients--;
			break;
		}
	}
	pthread_mutex_unlock(&h->cmu);
	free(c);
}

int hub_client_with(struct hub *h, const char *id,
		    int (*fn)(void *ptr, void *arg), void *arg)
{
	struct hub_client *c;
	int rc = ERR_NOT_FOUND;

	if (!id)
		return ERR_NOT_FOUND;
	pthread_mutex_lock(&h->cmu);
	for (c = h->clients[bucket_of(id)]; c; c = c->next) {
		if (!strcmp(c->id, id)) {
			rc = fn(c->ptr, arg);
			break;
		}
	}
	pthread_mutex_unlock(&h->cmu);
	return rc;
}

size_t hub_client_count(struct hub *h)
{
	size_t n;

	pthread_mutex_lock(&h->cmu);
	n = h->nclients;
	pthread_mutex_unlock(&h->cmu);
	return n;
}
