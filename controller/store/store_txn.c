/*
 * store_txn.c - transactions of the SQLite store (see store.h, store_int.h):
 * the batch and group commit, store_begin()/store_commit()/store_abort(),
 * the store_write() queue, commit hooks and the reads a transaction makes
 * on the write connection.
 */
#include "store_int.h"

/* ---- transactions ----------------------------------------------------- */

/*
 * Group commit. The write connection runs one SQLite transaction, the
 * batch, at a time. A logical transaction takes wlock, opens SAVEPOINT txn
 * in the batch (BEGIN IMMEDIATE first when no batch is open), does its
 * work, and on store_commit() RELEASEs its savepoint, links a waiter into
 * the batch and lets go of wlock; store_abort() rolls back only its
 * savepoint. Whoever lets go of wlock while no other thread is queued for
 * it closes the batch first (trim the change log, COMMIT), unless an
 * fdatasync() is under way or due (a committed batch waits for one): the
 * members could not be durable before the next one anyway, so the batch
 * stays open, and when the fdatasync() ends a member takes wlock and closes
 * it (flush()) if no writer is queued to do it. Bounds: BATCH_MAX members,
 * and BATCH_MAX_NS for the oldest member's wait while writers keep coming.
 * So a writer alone commits at once, and under load one batch accumulates
 * while the previous one is made durable: one COMMIT per fdatasync(). (Not
 * waiting for a due one, each writer that came between a COMMIT and the
 * start of its fdatasync() made a COMMIT of its own: 3.6 per fdatasync()
 * under 64 writers, each writing the same hot pages to the WAL again.)
 * Invariant: a batch with members is closed as soon as nobody is queued for
 * wlock and no fdatasync() is under way or due.
 *
 * Durability without holding wlock: the write connection runs with
 * synchronous = NORMAL, so a COMMIT appends the batch's frames to the WAL
 * without syncing it (SQLite still syncs the WAL before a checkpoint, the
 * database after one, and the WAL header when the WAL restarts, so the
 * file stays consistent). The members then make the WAL durable themselves
 * with fdatasync() on their own descriptor of the WAL file, outside
 * wlock, while the next batch accumulates: one member at a time syncs
 * (sync_leader()), covering every batch committed before it started, and
 * the others wait for it. Only then is the cached head advanced and a
 * member's store_commit() returns 0. Reads through the pool may see a
 * committed batch up to one fsync before it is durable; store_head() and
 * store_changes() never do. A failed fdatasync() leaves the WAL's state on
 * disk unknown (Linux may drop the dirty pages), so it breaks the store:
 * that batch's members and every later store_begin() fail.
 *
 * Revisions are numbered from the batch's head, so they stay gap-free in
 * commit order: a savepoint rolled back gives its revisions to the next
 * member, a failed COMMIT gives the whole batch's back.
 */
#define BATCH_MAX 256                    /* members per COMMIT */
#define BATCH_MAX_NS (2 * 1000 * 1000)   /* oldest member's wait */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Tell each waiter of list (detached from the batch) that its batch
 * failed, and wake them. */
static void fail_waiters(struct store *s, struct waiter *list, int rc,
			 const struct err *e)
{
	struct waiter *w, *next;

	pthread_mutex_lock(&s->glock);
	for (w = list; w; w = next) {
		next = w->next;         /* w may be gone once done is seen */
		w->rc = rc;
		w->err = *e;
		w->done = true;
	}
	pthread_cond_broadcast(&s->gcond);
	pthread_mutex_unlock(&s->glock);
}

/* ROLLBACK the batch's SQLite transaction if it is still open. */
static void batch_rollback(struct store *s)
{
	sqlite3_stmt *st;

	if (sqlite3_get_autocommit(s->wdb))
		return;
	if (wstmt(s, W_ROLLBACK, &st, NULL) == 0)
		run(s->wdb, st, "rollback", NULL);
	else
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
}

/* End the batch without committing: every member gets rc/e. */
static void batch_fail(struct store *s, int rc, const struct err *e)
{
	struct batch *b = &s->batch;
	struct waiter *list = b->waiters;

	batch_rollback(s);
	memset(b, 0, sizeof(*b));
	if (list)
		fail_waiters(s, list, rc, e);
}

static int rolled_back(struct err *e)
{
	return err_set(e, ERR_DB,
		       "cannot commit: the database rolled the transaction back after an error");
}

/* The store cannot make writes durable any more (a failed fdatasync). */
static bool broken(struct store *s, struct err *e)
{
	bool b;

	pthread_mutex_lock(&s->glock);
	b = s->broken;
	if (b && e)
		*e = s->broken_err;
	pthread_mutex_unlock(&s->glock);
	return b;
}

/* Retention: trim the change log in the batch's transaction; never the
 * head row. */
static int batch_trim(struct store *s, struct err *e)
{
	struct batch *b = &s->batch;
	sqlite3_stmt *st;
	int rc;

	if (b->head <= b->start_head || b->head <= s->keep)
		return 0;
	rc = wstmt(s, W_TRIM, &st, e);
	if (rc)
		return rc;
	if (sqlite3_bind_int64(st, 1, b->head - s->keep)) {
		done(st);
		return db_err(e, s->wdb, "cannot trim the change log");
	}
	return run(s->wdb, st, "cannot trim the change log", e);
}

/* COMMIT the open batch (under wlock) and hand its members the batch's
 * sequence number to wait for. */
void batch_close(struct store *s)
{
	struct batch *b = &s->batch;
	struct err e = ERR_INIT;
	struct waiter *w;
	sqlite3_stmt *st;
	int rc;

	if (!b->open)
		return;
	if (!b->n) {
		/* Only aborted members, or none: nothing to keep. */
		batch_fail(s, 0, &e);
		return;
	}
	if (broken(s, &e)) {
		rc = e.code;
		goto fail;
	}
	if (sqlite3_get_autocommit(s->wdb)) {
		rc = rolled_back(&e);
		goto fail;
	}
	rc = batch_trim(s, &e);
	if (!rc)
		rc = wstmt(s, W_COMMIT, &st, &e);
	if (!rc)
		rc = run(s->wdb, st, "cannot commit", &e);
	if (rc)
		goto fail;
	/* After the COMMIT: a reader that saw the old value either read the
	 * old record or sees the value change. */
	if (b->auth)
		atomic_fetch_add(&s->auth_seq, 1);
	pthread_mutex_lock(&s->glock);
	s->committed_seq++;
	atomic_store(&s->unsynced, true);
	s->committed_head = b->head;
	for (w = b->waiters; w; w = w->next) {
		w->seq = s->committed_seq;
		w->committed = true;
	}
	s->stats.batches++;
	if (b->n > s->stats.max_batch)
		s->stats.max_batch = b->n;
	pthread_cond_broadcast(&s->gcond);
	pthread_mutex_unlock(&s->glock);
	memset(b, 0, sizeof(*b));
	return;
fail:
	batch_fail(s, rc, &e);
}

/* A store_write() queued while wlock was held: wake the first caller so it
 * takes wlock and runs the queue (see store_write()). */
static void kick_queue(struct store *s)
{
	uint32_t queued = WREQ_QUEUED;

	pthread_mutex_lock(&s->qlock);
	if (s->qhead &&
	    atomic_compare_exchange_strong(&s->qhead->state, &queued,
					   WREQ_KICKED))
		util_futex_wake(&s->qhead->state);
	pthread_mutex_unlock(&s->qlock);
}

/* Let go of wlock, closing the batch first unless another writer is queued
 * to join it or its members have to wait for an fdatasync() under way or
 * due anyway. Every path that took wlock ends here. */
static void wunlock(struct store *s)
{
	struct batch *b = &s->batch;
	bool queued = atomic_load(&s->queued) > 0;

	if (!b->open)
		goto out;
	if (b->n == 0 ? !queued :
	    b->n >= BATCH_MAX ||
	    (!atomic_load(&s->syncing) && !atomic_load(&s->unsynced) &&
	     (!queued || now_ns() - b->started_ns >= BATCH_MAX_NS)))
		batch_close(s);
out:
	pthread_mutex_unlock(&s->wlock);
	kick_queue(s);
}

int (*store_wal_sync)(int fd) = fdatasync;

/*
 * Make every batch committed so far durable (called and returning with
 * glock held; drops it around the fdatasync).
 */
static void sync_leader(struct store *s)
{
	uint64_t target = s->committed_seq;
	int64_t head = s->committed_head;
	int r, errnum = 0;

	atomic_store(&s->syncing, true);
	pthread_mutex_unlock(&s->glock);
	r = store_wal_sync(s->walfd);
	if (r)
		errnum = errno;
	pthread_mutex_lock(&s->glock);
	atomic_store(&s->syncing, false);
	s->stats.syncs++;
	if (r) {
		err_set(&s->broken_err, ERR_IO,
			"cannot sync the write-ahead log of '%s' to disk (%s): restart to recover",
			s->path, strerror(errnum));
		s->broken = true;
		/* No batch waits for a sync any more: none will help. */
		atomic_store(&s->unsynced, false);
	} else if (!s->broken && target > s->durable_seq) {
		/* (Once broken, a later fdatasync() that succeeds says
		 * nothing about the pages the failed one may have lost.) */
		s->durable_seq = target;
		atomic_store(&s->unsynced, target < s->committed_seq);
		atomic_store(&s->head, head);   /* only once durable */
	}
	pthread_cond_broadcast(&s->gcond);
}

/*
 * Close the open batch, w's, which was left open (called and returning with
 * glock held; drops it to take wlock, after the transaction holding it).
 */
static void flush(struct store *s, const struct waiter *w)
{
	s->flushing = true;
	pthread_mutex_unlock(&s->glock);
	pthread_mutex_lock(&s->wlock);
	/* Under wlock w cannot change: batches end only under it. */
	if (!w->committed && !w->done)
		batch_close(s);
	pthread_mutex_unlock(&s->wlock);
	kick_queue(s);
	pthread_mutex_lock(&s->glock);
	s->flushing = false;
	pthread_cond_broadcast(&s->gcond);
}

static void settle(struct store *s, struct waiter *w);

/* The end of settled member w (glock held): its result, counted, and it
 * leaves the members in flight. */
static int member_end(struct store *s, struct waiter *w, struct err *e)
{
	int rc;

	if (w->done) {
		rc = w->rc;
		if (e)
			*e = w->err;
	} else if (s->durable_seq >= w->seq) {
		rc = 0;
	} else {
		rc = s->broken_err.code;
		if (e)
			*e = s->broken_err;
	}
	if (rc)
		s->stats.failed++;
	else
		s->stats.commits++;
	if (--s->inflight == 0)
		pthread_cond_broadcast(&s->gcond);
	return rc;
}

/* Wait until w's batch is durable (committing and syncing it when nobody
 * else does) or has failed. */
static int member_wait(struct store *s, struct waiter *w, struct err *e)
{
	int rc;

	pthread_mutex_lock(&s->glock);
	settle(s, w);
	rc = member_end(s, w, e);
	pthread_mutex_unlock(&s->glock);
	return rc;
}

/* w's batch failed, is durable, or cannot be (the store broke); glock
 * held. */
static bool settled(const struct store *s, const struct waiter *w)
{
	return w->done ||
	       (w->committed && (s->durable_seq >= w->seq || s->broken));
}

/*
 * One step towards settling waiters (glock held, dropped inside): sync
 * when committed (one of them is in a committed batch) or when any
 * committed batch waits for its sync (see wunlock), else close the open
 * batch, w's, unless a sync under way or another writer is about to end
 * it: then wait for that.
 */
static void settle_step(struct store *s, bool committed,
			const struct waiter *w)
{
	if (atomic_load(&s->syncing))
		pthread_cond_wait(&s->gcond, &s->glock);
	else if (committed || atomic_load(&s->unsynced))
		sync_leader(s);
	else if (s->flushing || atomic_load(&s->queued))
		pthread_cond_wait(&s->gcond, &s->glock); /* see wunlock */
	else
		flush(s, w);
}

/* Wait (glock held) until w's batch failed, is durable, or cannot be
 * (the store broke), doing the flushing or syncing nobody else does. */
static void settle(struct store *s, struct waiter *w)
{
	while (!settled(s, w))
		settle_step(s, w->committed, w);
}

/* BEGIN IMMEDIATE a new batch and read the head it starts from. */
static int batch_open(struct store *s, struct err *e)
{
	struct batch *b = &s->batch;
	sqlite3_stmt *st;
	int64_t head;
	int rc;

	rc = wstmt(s, W_BEGIN, &st, e);
	if (!rc)
		rc = run(s->wdb, st, "cannot begin transaction", e);
	if (rc)
		return rc;
	rc = wstmt(s, W_HEAD, &st, e);
	if (!rc)
		rc = query_int(s->wdb, st, NULL, &head, NULL, e);
	if (rc) {
		batch_rollback(s);
		return rc;
	}
	memset(b, 0, sizeof(*b));
	b->open = true;
	b->start_head = head;
	b->head = head;
	return 0;
}

/*
 * Start t's savepoint in the open batch (opening one first), with wlock
 * held by the caller. On failure wlock stays held: the caller lets go.
 */
/* The store whose transaction this thread holds open, if any. */
static _Thread_local const struct store *tl_txn_store;

/* store_set_thread_writer()'s label; "" = none set ("server"). */
static _Thread_local char tl_writer[STORE_WRITER_MAX];

void store_set_thread_writer(const char *label)
{
	snprintf(tl_writer, sizeof(tl_writer), "%s", label ? label : "");
}

const char *store_thread_writer(void)
{
	return tl_writer[0] ? tl_writer : STORE_WRITER_DEFAULT;
}

/* writer: the label t's changes carry until store_txn_set_writer(). */
static int begin_locked(struct store *s, struct store_txn **out,
			const char *writer, struct err *e)
{
	struct store_txn *t = &s->txn;
	struct batch *b = &s->batch;
	struct err le = ERR_INIT;
	sqlite3_stmt *st;
	int rc;

	if (broken(s, &le)) {
		if (e)
			*e = le;
		return le.code;
	}
	/* SQLite may have rolled the batch back after an error in an
	 * earlier member (I/O error, disk full): its members must hear. */
	if (b->open && sqlite3_get_autocommit(s->wdb))
		batch_fail(s, rolled_back(&le), &le);
	if (!b->open) {
		rc = batch_open(s, e);
		if (rc)
			return rc;
	}
	rc = wstmt(s, W_SAVEPOINT, &st, e);
	if (!rc)
		rc = run(s->wdb, st, "cannot begin transaction", e);
	if (rc)
		return rc;
	t->owner = pthread_self();
	t->active = true;
	tl_txn_store = s;
	t->next_rev = b->head + 1;
	t->failed = false;
	err_clear(&t->ferr);
	store_txn_set_actor(t, NULL, 0);
	store_txn_set_writer(t, writer);
	t->in_hook = false;
	t->amend_rev = 0;
	t->amending = false;
	*out = t;
	return 0;
}

void store_txn_set_actor(struct store_txn *t, const char *id, unsigned flags)
{
	snprintf(t->actor_id, sizeof(t->actor_id), "%s", id ? id : "");
	t->actor.id = id ? t->actor_id : NULL;
	t->actor.declares = flags & STORE_ACTOR_DECLARES;
}

void store_txn_set_writer(struct store_txn *t, const char *label)
{
	snprintf(t->writer, sizeof(t->writer), "%s",
		 label && *label ? label : STORE_WRITER_DEFAULT);
}

const char *store_txn_writer(const struct store_txn *t)
{
	return t->writer;
}

int store_begin(struct store *s, struct store_txn **out, struct err *e)
{
	int rc;

	*out = NULL;
	if (s->read_only)
		return err_set(e, ERR_FORBIDDEN, "the store is open read-only");
	atomic_fetch_add(&s->queued, 1);
	rc = pthread_mutex_lock(&s->wlock);
	atomic_fetch_sub(&s->queued, 1);
	if (rc == EDEADLK)
		return err_set(e, ERR_INTERNAL,
			       "a store transaction is already open in this thread");
	if (rc)
		return err_set(e, ERR_INTERNAL, "cannot take the writer lock: %s",
			       strerror(rc));
	rc = begin_locked(s, out, store_thread_writer(), e);
	if (rc)
		wunlock(s);
	return rc;
}

/* Roll back t's savepoint (only that) and end t. When that fails, or SQLite
 * already rolled everything back, the whole batch fails. */
void txn_rollback(struct store_txn *t)
{
	struct store *s = t->s;
	struct err e = ERR_INIT;
	sqlite3_stmt *st;
	int rc;

	t->active = false;
	tl_txn_store = NULL;
	if (sqlite3_get_autocommit(s->wdb)) {
		batch_fail(s, rolled_back(&e), &e);
		return;
	}
	rc = wstmt(s, W_ROLLBACK_TO, &st, &e);
	if (!rc)
		rc = run(s->wdb, st, "cannot roll back", &e);
	if (!rc)
		rc = wstmt(s, W_RELEASE, &st, &e);
	if (!rc)
		rc = run(s->wdb, st, "cannot roll back", &e);
	if (rc)
		batch_fail(s, rc, &e);
}

/* Call the commit hooks with the (durable) head. */
static void run_hooks(struct store *s)
{
	struct hook hooks[STORE_COMMIT_HOOKS];
	int i, n;

	pthread_mutex_lock(&s->glock);
	n = s->nhooks;
	memcpy(hooks, s->hooks, sizeof(hooks));
	pthread_mutex_unlock(&s->glock);
	for (i = 0; i < n; i++)
		hooks[i].fn(hooks[i].arg, store_head(s));
}

int store_add_commit_hook(struct store *s, store_commit_fn fn, void *arg,
			  struct err *e)
{
	int rc = 0;

	if (!fn)
		return err_set(e, ERR_INTERNAL, "no commit hook given");
	pthread_mutex_lock(&s->glock);
	if (s->nhooks == STORE_COMMIT_HOOKS)
		rc = err_set(e, ERR_TOO_LARGE,
			     "too many commit hooks (at most %d)",
			     STORE_COMMIT_HOOKS);
	else
		s->hooks[s->nhooks++] = (struct hook){ fn, arg };
	pthread_mutex_unlock(&s->glock);
	return rc;
}

void store_remove_commit_hook(struct store *s, store_commit_fn fn, void *arg)
{
	int i;

	pthread_mutex_lock(&s->glock);
	for (i = 0; i < s->nhooks; i++) {
		if (s->hooks[i].fn != fn || s->hooks[i].arg != arg)
			continue;
		memmove(&s->hooks[i], &s->hooks[i + 1],
			(size_t)(s->nhooks - i - 1) * sizeof(s->hooks[0]));
		s->nhooks--;
		break;
	}
	pthread_mutex_unlock(&s->glock);
}

/* t belongs to the calling thread and is open. */
static bool txn_mine(const struct store_txn *t)
{
	return t->active && pthread_equal(t->owner, pthread_self());
}

/*
 * Release t's savepoint into the batch and link w (zeroed here) as a
 * member waiting for its COMMIT, with wlock held by the caller (who lets
 * go of it afterwards). On failure t is rolled back and nothing is linked.
 */
static int release_locked(struct store_txn *t, struct waiter *w,
			  struct err *e)
{
	struct store *s = t->s;
	struct batch *b = &s->batch;
	sqlite3_stmt *st;
	int rc;

	if (t->failed) {
		rc = t->ferr.code;
		if (e)
			*e = t->ferr;
		goto fail;
	}
	rc = wstmt(s, W_RELEASE, &st, e);
	if (!rc)
		rc = run(s->wdb, st, "cannot commit", e);
	if (rc)
		goto fail;
	t->active = false;
	tl_txn_store = NULL;
	memset(w, 0, sizeof(*w));
	w->next = b->waiters;
	b->waiters = w;
	if (b->n++ == 0)
		b->started_ns = now_ns();
	b->head = t->next_rev - 1;
	pthread_mutex_lock(&s->glock);
	s->inflight++;
	pthread_mutex_unlock(&s->glock);
	return 0;
fail:
	txn_rollback(t);
	pthread_mutex_lock(&s->glock);
	s->stats.failed++;
	pthread_mutex_unlock(&s->glock);
	return rc;
}

int store_commit(struct store_txn *t, struct err *e)
{
	struct waiter w;
	struct store *s;
	int rc;

	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction to commit");
	if (!txn_mine(t))
		return err_set(e, ERR_INTERNAL,
			       "the transaction is not open in this thread");
	s = t->s;
	rc = release_locked(t, &w, e);
	wunlock(s);     /* commits the batch now when nobody is queued */
	if (rc)
		return rc;
	rc = member_wait(s, &w, e);
	if (!rc)
		run_hooks(s);
	return rc;
}

void store_abort(struct store_txn *t)
{
	if (!t)
		return;
	/* A transaction of another thread (or one already ended) is not
	 * ours to touch: that is a caller bug. */
	assert(txn_mine(t));
	if (!txn_mine(t))
		return;
	txn_rollback(t);
	wunlock(t->s);
}

/*
 * Combined writes. A caller of store_write() queues its request, then
 * either takes wlock (trylock) and runs the queue, or sleeps on its
 * request's word until its request is done. Every path that lets go of
 * wlock wakes the first queued caller afterwards (kick_queue() in
 * wunlock()), so a request queued while wlock was held is always picked
 * up: by the holder if it still looks at the queue, else by its own caller
 * after the wake. The combiner runs each request as store_begin() + fn +
 * store_commit() would, without letting go of wlock in between, lets go,
 * and puts the requests released into a batch on the pending list. One
 * caller at a time, the driver (drive()), sees the pending requests
 * through: it closes the open batch, syncs the WAL, runs the commit hooks
 * once per round and wakes each request whose batch settled. So every
 * other caller sleeps once, on its own word, and finds its write durable
 * (or failed) when it wakes; earlier each combiner waited for its own run
 * on the shared condition variable, and each event woke all of them. A
 * caller whose request a combiner has taken off the queue only sleeps:
 * trying wlock again would find the queue empty and spin. The wakes are
 * state changes of the word (QUEUED -> KICKED, DRIVE, RAN), so none is
 * lost when it comes between a caller's check and its sleep.
 */
static struct wreq *dequeue_all(struct store *s)
{
	struct wreq *list, *q;

	pthread_mutex_lock(&s->qlock);
	list = s->qhead;
	s->qhead = s->qtail = NULL;
	for (q = list; q; q = q->next)
		atomic_store_explicit(&q->taken, true, memory_order_relaxed);
	pthread_mutex_unlock(&s->qlock);
	return list;
}

/* Hand q to its caller: rc and w are final. q may be gone right after. */
static void wreq_done(struct wreq *q)
{
	atomic_store(&q->state, WREQ_RAN);
	util_futex_wake(&q->state);
}

/*
 * Drive the pending requests to their end (called and returning without
 * glock; s->driving set for the caller, self its own request): the one
 * driver does for the whole list what settle() does for one waiter
 * (close the open batch, sync the WAL, wait for a plain writer doing
 * either), and wakes each request as its batch settles, running the
 * commit hooks once per round. Every other caller sleeps once, on its own
 * word. Once self is done the driver passes the role to a pending caller
 * (WREQ_DRIVE) instead of serving others' requests for ever.
 */
static void drive(struct store *s, struct wreq *self)
{
	struct wreq *q, **pp, *ready, *next;
	bool durable, committed;

	pthread_mutex_lock(&s->glock);
	for (;;) {
		ready = NULL;
		durable = committed = false;
		for (pp = &s->pending; (q = *pp) != NULL;) {
			if (settled(s, q->w)) {
				/* Its result now, so that its caller need
				 * not queue for glock once woken. */
				q->rc = member_end(s, q->w, &q->err);
				durable |= q->rc == 0;
				*pp = q->pnext;
				q->pnext = ready;
				ready = q;
			} else {
				committed |= q->w->committed;
				pp = &q->pnext;
			}
		}
		if (ready) {
			pthread_mutex_unlock(&s->glock);
			if (durable)
				run_hooks(s);
			for (q = ready; q; q = next) {
				next = q->pnext;
				wreq_done(q);
			}
			pthread_mutex_lock(&s->glock);
			continue;
		}
		if (!s->pending) {
			s->driving = false;
			break;
		}
		if (atomic_load(&self->state) == WREQ_RAN) {
			/* Done with ours: the next driver is a caller who
			 * waits anyway. s->driving stays set for it. */
			atomic_store(&s->pending->state, WREQ_DRIVE);
			util_futex_wake(&s->pending->state);
			break;
		}
		settle_step(s, committed, s->pending->w);
	}
	pthread_mutex_unlock(&s->glock);
}

/* Run the queue (wlock held on entry, let go on return), then hand the
 * requests released into a batch to the driver, becoming it when there
 * is none. */
static void combine(struct store *s, struct wreq *self)
{
	struct wreq *list, *q, *next, *failed = NULL, *ok = NULL;
	struct store_txn *t;
	bool drive_now = false;
	int ran = 0;

	/* At most BATCH_MAX per run, so that the callers already run hear
	 * back; later ones are kicked to the next combiner by wunlock(). */
	while (ran < BATCH_MAX && (list = dequeue_all(s)) != NULL) {
		for (q = list; q; q = next) {
			next = q->next;
			q->rc = begin_locked(s, &t, q->writer, &q->err);
			if (!q->rc) {
				q->rc = q->fn(t, q->arg, &q->err);
				if (q->rc)
					txn_rollback(t);
				else
					q->rc = release_locked(t, q->w, &q->err);
			}
			if (q->rc) {
				q->next = failed;
				failed = q;
			} else {
				q->pnext = ok;
				ok = q;
			}
			ran++;
			if (s->batch.open && s->batch.n >= BATCH_MAX)
				batch_close(s);
		}
	}
	wunlock(s);
	if (ok) {
		pthread_mutex_lock(&s->glock);
		for (q = ok; q; q = next) {
			next = q->pnext;
			q->pnext = s->pending;
			s->pending = q;
		}
		if (!s->driving)
			drive_now = s->driving = true;
		pthread_mutex_unlock(&s->glock);
	}
	for (q = failed; q; q = next) {
		next = q->next;   /* q may be gone once WREQ_RAN is seen */
		wreq_done(q);
	}
	if (drive_now)
		drive(s, self);
}

int store_write(struct store *s, store_write_fn fn, void *arg, struct err *e)
{
	struct waiter w;
	struct wreq q;

	if (s->read_only)
		return err_set(e, ERR_FORBIDDEN, "the store is open read-only");
	/* It would wait for the transaction this thread holds. */
	if (tl_txn_store == s)
		return err_set(e, ERR_INTERNAL,
			       "a store transaction is already open in this thread");
	memset(&q, 0, sizeof(q));
	q.fn = fn;
	q.arg = arg;
	q.writer = store_thread_writer();  /* this thread's, while it waits */
	q.w = &w;
	err_clear(&q.err);
	atomic_init(&q.taken, false);
	atomic_init(&q.state, WREQ_QUEUED);
	pthread_mutex_lock(&s->qlock);
	if (s->qtail)
		s->qtail->next = &q;
	else
		s->qhead = &q;
	s->qtail = &q;
	pthread_mutex_unlock(&s->qlock);
	for (;;) {
		uint32_t st = atomic_load(&q.state);

		if (st == WREQ_RAN)
			break;
		if (st == WREQ_DRIVE) {
			atomic_store(&q.state, WREQ_QUEUED);
			drive(s, &q);
			continue;
		}
		if (st == WREQ_KICKED)     /* take the kick; a later one wakes */
			atomic_compare_exchange_strong(&q.state, &st,
						       WREQ_QUEUED);
		/* Once taken, only its combiner can finish it: trying wlock
		 * again would only spin while that one syncs. */
		if (!atomic_load_explicit(&q.taken, memory_order_relaxed) &&
		    pthread_mutex_trylock(&s->wlock) == 0) {
			combine(s, &q);
			continue;
		}
		/* The timeout is only a safety net: kick_queue() wakes. */
		util_futex_wait(&q.state, WREQ_QUEUED,
				util_monotonic_ms() + 50);
	}
	/* Failed, or settled and ended by the driver, who ran the commit
	 * hooks. */
	if (q.rc && e)
		*e = q.err;
	return q.rc;
}

void store_stats(struct store *s, struct store_stats *out)
{
	pthread_mutex_lock(&s->glock);
	*out = s->stats;
	pthread_mutex_unlock(&s->glock);
}

/* A write failed after part of it reached the database: the transaction
 * can no longer commit. */
int poison(struct store_txn *t, int rc, const struct err *le,
	   struct err *e)
{
	t->failed = true;
	err_set(&t->ferr, rc, "transaction aborted after a failed write: %s",
		le->msg);
	if (e)
		*e = *le;
	return rc;
}

int txn_get(struct store_txn *t, const char *coll, const char *key,
	    bool by_name, struct record *out, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	rc = wstmt(t->s, by_name ? W_GET_NAME : W_GET_ID, &st, e);
	if (rc)
		return rc;
	rc = get_row(t->s->wdb, st, coll, key, by_name, out, e);
	return rc ? rc : unseal_record(t->s, out, e);
}

/* 1 when the record exists, 0 when not, < 0 on error. */
int txn_exists(struct store_txn *t, const char *coll, const char *id,
	       struct err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	rc = wstmt(t->s, W_EXISTS, &st, e);
	if (rc)
		return rc;
	if (bind_text(st, 1, coll) || bind_text(st, 2, id)) {
		rc = db_err(e, t->s->wdb, "cannot read record");
		goto out;
	}
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		rc = 1;
	else if (r != SQLITE_DONE)
		rc = db_err(e, t->s->wdb, "cannot read record");
out:
	done(st);
	return rc;
}

/* The id of the record of coll named name into id_out ("" when none). */
int name_owner(struct store_txn *t, const char *coll,
	       const char *name, char id_out[ID_LEN + 1],
	       struct err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	id_out[0] = '\0';
	rc = wstmt(t->s, W_NAME_OWNER, &st, e);
	if (rc)
		return rc;
	if (bind_text(st, 1, coll) || bind_text(st, 2, name)) {
		rc = db_err(e, t->s->wdb, "cannot read record");
		goto out;
	}
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		copy_col(id_out, ID_LEN + 1, st, 0);
	else if (r != SQLITE_DONE)
		rc = db_err(e, t->s->wdb, "cannot read record");
out:
	done(st);
	return rc;
}

int store_txn_get(struct store_txn *t, const char *collection,
		  const char *id, struct record *out, struct err *e)
{
	const struct collection *c;
	int rc;

	record_init(out);
	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction");
	rc = find_coll(t->s, collection, &c, e);
	if (rc)
		return rc;
	if (!id)
		return err_set(e, ERR_NOT_FOUND, "no %s record with id ''",
			       collection);
	return txn_get(t, c->name, id, false, out, e);
}

int store_txn_get_by_name(struct store_txn *t, const char *collection,
			  const char *name, struct record *out, struct err *e)
{
	const struct collection *c;
	int rc;

	record_init(out);
	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction");
	rc = find_coll(t->s, collection, &c, e);
	if (rc)
		return rc;
	if (!name)
		return err_set(e, ERR_NOT_FOUND, "no %s record named ''",
			       collection);
	return txn_get(t, c->name, name, true, out, e);
}
