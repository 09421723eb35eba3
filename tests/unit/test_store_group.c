/*
 * test_store_group.c - unit tests for the store's group commit: many
 * concurrent writers share few COMMITs with distinct, gap-free revisions; a
 * writer alone is never made to wait; an aborted transaction inside a busy
 * batch takes nothing else with it; a failing COMMIT fails every member of
 * its batch and nothing else; what was acknowledged survives a reopen and a
 * SIGKILL; transactions stay tied to their thread; store_write()'s
 * combined writers do all of that too, side by side with plain ones.
 *
 * A failing COMMIT is produced with a wrapper VFS (sg_vfs) registered as
 * SQLite's default for the test's process: it forwards everything to the
 * real VFS but fails writes to the WAL while sg_fail_writes > 0.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

static const char sg_schema_json[] =
	"{\"version\": 1, \"collections\": ["
	" {\"name\": \"items\", \"id\": \"pc_items\", \"kind\": \"Item\","
	"  \"nameField\": \"name\","
	"  \"fields\": [{\"name\": \"name\", \"type\": \"text\", \"required\": true},"
	"              {\"name\": \"n\", \"type\": \"number\"}],"
	"  \"rules\": {\"list\": null, \"view\": null, \"create\": null,"
	"            \"update\": null, \"delete\": null}}]}";

static char sg_dir[256];
static struct schema *sg_sch;
static struct store *sg;

static void sg_setup(void)
{
	tl_store_setup(sg_dir, sizeof(sg_dir), "group", sg_schema_json, 0,
		       &sg_sch, &sg);
}

static void sg_teardown(void)
{
	tl_store_teardown(sg_dir, &sg_sch, &sg);
}

TestSuite(store_group, .init = sg_setup, .fini = sg_teardown);

/* The puts of sg_create(), as a transaction function (store_write()'s
 * kind, called directly for a plain transaction). */
struct sg_op {
	struct store_put *p;
	json_t *wrong;      /* non-NULL: also make the failing put */
	struct record *out;
};

static int sg_create_txn(struct store_txn *t, void *arg, struct err *e)
{
	struct sg_op *op = arg;
	int rc;

	rc = store_txn_put(t, op->p, op->out, NULL, e);
	if (!rc && op->wrong) {
		op->p->data = op->wrong;
		rc = store_txn_put(t, op->p, NULL, NULL, e);
		if (rc != ERR_INVALID)
			rc = ERR_INTERNAL;  /* the bad put must fail */
	}
	return rc;
}

/*
 * Create item name in its own transaction on s: store_begin() +
 * store_commit(), or with combined through store_write(). With bad, the
 * transaction also makes a put that fails validation and is then aborted.
 * Returns the commit's result (or the put's error); the record in *out.
 */
static int sg_create_as(struct store *s, const char *name, int n, bool bad,
			bool combined, struct record *out, struct err *e)
{
	struct store_txn *t = NULL;
	struct store_put p;
	struct sg_op op;
	json_t *d = json_pack("{s:s,s:i}", "name", name, "n", n);
	json_t *wrong = json_pack("{s:s,s:s}", "name", "x", "n", "not a number");
	int rc;

	memset(&p, 0, sizeof(p));
	p.collection = "items";
	p.data = d;
	p.mode = STORE_CREATE;
	record_init(out);
	op.p = &p;
	op.wrong = bad ? wrong : NULL;
	op.out = out;
	if (combined) {
		rc = store_write(s, sg_create_txn, &op, e);
	} else {
		rc = store_begin(s, &t, e);
		if (!rc) {
			rc = sg_create_txn(t, &op, e);
			if (rc)
				store_abort(t);
			else
				rc = store_commit(t, e);
		}
	}
	json_decref(d);
	json_decref(wrong);
	return rc;
}

static int sg_create(struct store *s, const char *name, int n, bool bad,
		     struct record *out, struct err *e)
{
	return sg_create_as(s, name, n, bad, false, out, e);
}

static int sg_create_combined(struct store *s, const char *name, int n,
			      bool bad, struct record *out, struct err *e)
{
	return sg_create_as(s, name, n, bad, true, out, e);
}

static int sg_cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* revs[0..n) sorted must be exactly 1..n. */
static void sg_assert_gap_free(int64_t *revs, size_t n)
{
	size_t i;

	qsort(revs, n, sizeof(*revs), sg_cmp64);
	for (i = 0; i < n; i++)
		cr_assert_eq(revs[i], (int64_t)i + 1,
			     "revision %zu is %lld: not distinct and gap-free",
			     i, (long long)revs[i]);
}

static double sg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- many writers --------------------------------------------------- */

#define SG_THREADS 64
#define SG_PER 200

struct sg_writer {
	int k;              /* thread number */
	int per;            /* transactions to run */
	int bad_every;      /* > 0: every bad_every-th one is aborted */
	bool combined;      /* through store_write() */
	int ok, errors;
	int64_t *revs;      /* revisions of the committed creates */
	char (*ids)[ID_LEN + 1];
	struct err last;
};

static void *sg_write_loop(void *arg)
{
	struct sg_writer *w = arg;
	struct record r;
	char name[48];
	int i, rc;
	bool bad;

	for (i = 0; i < w->per; i++) {
		bad = w->bad_every > 0 && i % w->bad_every == 0;
		snprintf(name, sizeof(name), "%s-%d-%d", bad ? "bad" : "ok",
			 w->k, i);
		rc = (w->combined ? sg_create_combined : sg_create)(
			sg, name, i, bad, &r, &w->last);
		if (bad) {
			if (rc != ERR_INVALID)
				w->errors++;    /* the abort path ran */
		} else if (rc) {
			w->errors++;
		} else {
			w->revs[w->ok] = r.revision;
			snprintf(w->ids[w->ok], ID_LEN + 1, "%s", r.id);
			w->ok++;
		}
		record_release(&r);
	}
	return NULL;
}

/* Run nthreads writers of per transactions each; returns them (free with
 * sg_free_writers()). */
static int sg_combined_every;   /* > 0: every n-th writer is combined */

static struct sg_writer *sg_run_writers(int nthreads, int per, int bad_every,
					double *secs)
{
	struct sg_writer *w = calloc((size_t)nthreads, sizeof(*w));
	pthread_t *th = calloc((size_t)nthreads, sizeof(*th));
	double t0;
	int i;

	cr_assert(w && th);
	for (i = 0; i < nthreads; i++) {
		w[i].k = i;
		w[i].per = per;
		w[i].bad_every = bad_every;
		w[i].combined = sg_combined_every > 0 &&
				i % sg_combined_every == 0;
		w[i].revs = calloc((size_t)per, sizeof(*w[i].revs));
		w[i].ids = calloc((size_t)per, sizeof(*w[i].ids));
		cr_assert(w[i].revs && w[i].ids);
	}
	t0 = sg_now();
	for (i = 0; i < nthreads; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, sg_write_loop, &w[i]),
			     0);
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	*secs = sg_now() - t0;
	free(th);
	return w;
}

static void sg_free_writers(struct sg_writer *w, int nthreads)
{
	int i;

	for (i = 0; i < nthreads; i++) {
		free(w[i].revs);
		free(w[i].ids);
	}
	free(w);
}

/* All committed revisions of w, gap-free; returns how many. */
static size_t sg_check_revisions(struct sg_writer *w, int nthreads)
{
	int64_t *all;
	size_t n = 0;
	int i, j;

	for (i = 0; i < nthreads; i++)
		n += (size_t)w[i].ok;
	all = calloc(n ? n : 1, sizeof(*all));
	cr_assert_not_null(all);
	for (i = 0, n = 0; i < nthreads; i++)
		for (j = 0; j < w[i].ok; j++)
			all[n++] = w[i].revs[j];
	sg_assert_gap_free(all, n);
	free(all);
	return n;
}

/*
 * SG_THREADS writers of SG_PER creates each (every combined_every-th one
 * through store_write(); 0: none) all commit with distinct, gap-free
 * revisions in shared batches, and everything is there after a reopen.
 */
static void sg_writers_share_commits(int combined_every, const char *what)
{
	struct store_stats st;
	struct sg_writer *w;
	struct record r;
	struct err e = ERR_INIT;
	double secs;
	size_t n;
	int i, j;

	sg_combined_every = combined_every;
	w = sg_run_writers(SG_THREADS, SG_PER, 0, &secs);
	sg_combined_every = 0;
	for (i = 0; i < SG_THREADS; i++)
		cr_assert_eq(w[i].errors, 0, "writer %d: %s", i, w[i].last.msg);
	n = sg_check_revisions(w, SG_THREADS);
	cr_assert_eq(n, (size_t)SG_THREADS * SG_PER);
	cr_assert_eq(store_head(sg), (int64_t)n);

	store_stats(sg, &st);
	cr_log_info("%s: %zu creates from %d threads in %.2f s (%.0f/s, "
		    "sanitizer build), %lld batches, largest %lld, %lld syncs",
		    what, n, SG_THREADS, secs, (double)n / secs,
		    (long long)st.batches, (long long)st.max_batch,
		    (long long)st.syncs);
	cr_assert_eq(st.commits, (int64_t)n);
	cr_assert_eq(st.failed, 0);
	cr_assert(st.batches < st.commits * 9 / 10,
		  "%lld batches for %lld commits: no grouping",
		  (long long)st.batches, (long long)st.commits);
	cr_assert_gt(st.max_batch, 1);
	cr_assert_leq(st.syncs, st.batches);
	/* Combined writers only: one COMMIT per fdatasync(), a batch never
	 * closed while the previous one waits for its sync. */
	if (combined_every == 1)
		cr_assert_leq(st.batches, st.syncs,
			      "%lld batches for %lld syncs",
			      (long long)st.batches, (long long)st.syncs);

	/* Everything acknowledged is there after a reopen. */
	store_close(sg);
	sg = tl_store_open(sg_sch, sg_dir, 0);
	cr_assert_eq(store_head(sg), (int64_t)n);
	for (i = 0; i < SG_THREADS; i++) {
		for (j = 0; j < w[i].ok; j++) {
			cr_assert_eq(store_get(sg, "items", w[i].ids[j], &r, &e),
				     0, "%s", e.msg);
			cr_assert_eq(r.revision, w[i].revs[j]);
			record_release(&r);
		}
	}
	sg_free_writers(w, SG_THREADS);
}

Test(store_group, many_writers_share_commits, .timeout = 600)
{
	sg_writers_share_commits(0, "group commit");
}

/* Every writer through store_write(). */
Test(store_group, combined_writers_share_commits, .timeout = 600)
{
	sg_writers_share_commits(1, "combined writers");
}

/* Half the writers through store_write(), half through store_begin() +
 * store_commit(), on one store at once. */
Test(store_group, combined_and_plain_writers_share_commits, .timeout = 600)
{
	sg_writers_share_commits(2, "mixed writers");
}

/* store_write() from a thread holding a transaction would wait for
 * itself: it is refused at once instead. */
Test(store_group, combined_inside_transaction_is_refused, .timeout = 600)
{
	struct store_txn *t = NULL;
	struct record r;
	struct err e = ERR_INIT;

	cr_assert_eq(store_begin(sg, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(sg_create_combined(sg, "nested", 1, false, &r, &e),
		     ERR_INTERNAL);
	cr_assert(strstr(e.msg, "already open"), "%s", e.msg);
	record_release(&r);
	store_abort(t);
	/* The queue is empty again: the next write goes through. */
	cr_assert_eq(sg_create_combined(sg, "after", 1, false, &r, &e), 0,
		     "%s", e.msg);
	record_release(&r);
	cr_assert_eq(store_head(sg), 1);
}

/* ---- a disk that fails a sync ----------------------------------------- */

static _Atomic int sg_sync_calls;
static _Atomic int64_t sg_head_at_failure = -1;

/* fdatasync(), except that the fourth call fails with EIO, remembering the
 * durable head at that moment; later calls succeed again, as on Linux,
 * which reports a lost write back once. */
static int sg_failing_sync(int fd)
{
	if (atomic_fetch_add(&sg_sync_calls, 1) == 3) {
		atomic_store(&sg_head_at_failure, store_head(sg));
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

/*
 * 16 writers (half combined) while a sync fails: every write acknowledged
 * was made durable by a sync before the failed one (its revision is at
 * most the head then), the writes the failed sync covered fail and so
 * does everything after, naming the cause, until the store is reopened.
 */
Test(store_group, failed_sync_fails_its_writes_and_every_later_one,
     .timeout = 600)
{
	struct sg_writer *w;
	struct record r;
	struct err e = ERR_INIT;
	int64_t at;
	double secs;
	int i, j, ok = 0, failed = 0;

	store_wal_sync = sg_failing_sync;
	sg_combined_every = 2;
	w = sg_run_writers(16, 30, 0, &secs);
	sg_combined_every = 0;
	at = atomic_load(&sg_head_at_failure);
	cr_assert_geq(at, 0, "the sync never failed");
	for (i = 0; i < 16; i++) {
		for (j = 0; j < w[i].ok; j++)
			cr_assert_leq(w[i].revs[j], at,
				      "revision %lld acknowledged, but only %lld was durable when the sync failed",
				      (long long)w[i].revs[j], (long long)at);
		ok += w[i].ok;
		failed += w[i].errors;
		if (w[i].errors)
			cr_assert(strstr(w[i].last.msg, "cannot sync"), "%s",
				  w[i].last.msg);
	}
	cr_assert_eq(ok + failed, 16 * 30);
	cr_assert_gt(failed, 0);
	cr_assert_eq(store_head(sg), at, "the head moved past the failure");
	/* Broken until reopened, even though syncs work again. */
	cr_assert_neq(sg_create(sg, "later", 1, false, &r, &e), 0);
	cr_assert(strstr(e.msg, "cannot sync"), "%s", e.msg);
	record_release(&r);
	store_wal_sync = fdatasync;
	store_close(sg);
	sg = tl_store_open(sg_sch, sg_dir, 0);
	cr_assert_eq(sg_create(sg, "reopened", 1, false, &r, &e), 0, "%s",
		     e.msg);
	record_release(&r);
	sg_free_writers(w, 16);
}

/*
 * 32 writers of 60 creates, every third one aborted after a failed put
 * (every combined_every-th writer through store_write(); 0: none): the
 * aborted ones leave nothing and no gap, the others are all there.
 */
static void sg_aborts_are_alone(int combined_every)
{
	struct sg_writer *w;
	struct record r;
	struct err e = ERR_INIT;
	char name[48];
	double secs;
	size_t n;
	int i, j;

	sg_combined_every = combined_every;
	w = sg_run_writers(32, 60, 3, &secs);
	sg_combined_every = 0;
	for (i = 0; i < 32; i++)
		cr_assert_eq(w[i].errors, 0, "writer %d: %s", i, w[i].last.msg);
	n = sg_check_revisions(w, 32);
	cr_assert_eq(n, (size_t)32 * 40);
	cr_assert_eq(store_head(sg), (int64_t)n, "aborts left no gaps");
	for (i = 0; i < 32; i++) {
		for (j = 0; j < 60; j++) {
			snprintf(name, sizeof(name), "%s-%d-%d",
				 j % 3 == 0 ? "bad" : "ok", i, j);
			if (j % 3 == 0) {
				cr_assert_eq(store_get_by_name(sg, "items", name,
							       &r, &e),
					     ERR_NOT_FOUND, "%s is there", name);
			} else {
				cr_assert_eq(store_get_by_name(sg, "items", name,
							       &r, &e),
					     0, "%s: %s", name, e.msg);
			}
			record_release(&r);
		}
	}
	sg_free_writers(w, 32);
}

Test(store_group, aborted_txn_in_busy_batch_is_alone, .timeout = 600)
{
	sg_aborts_are_alone(0);
}

/* A store_write() whose function fails is rolled back alone, however many
 * others its combiner ran in the same batch. */
Test(store_group, combined_failure_is_alone, .timeout = 600)
{
	sg_aborts_are_alone(1);
}

Test(store_group, writer_alone_commits_at_once)
{
	struct store_stats st;
	struct record r;
	struct err e = ERR_INIT;
	char name[32];
	int i;

	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "alone-%d", i);
		cr_assert_eq(sg_create(sg, name, i, false, &r, &e), 0, "%s",
			     e.msg);
		cr_assert_eq(r.revision, i + 1);
		cr_assert_eq(store_head(sg), i + 1, "durable on return");
		record_release(&r);
	}
	store_stats(sg, &st);
	cr_assert_eq(st.commits, 50);
	cr_assert_eq(st.batches, 50, "each commit is its own batch");
	cr_assert_eq(st.syncs, 50);
	cr_assert_eq(st.max_batch, 1);
}

/* ---- a member reads earlier members' writes ------------------------- */

struct sg_pair {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool began;
	char id[ID_LEN + 1];
	int rc;
};

/* Begin, let the main thread queue behind us, then create and commit. */
static void *sg_first_member(void *arg)
{
	struct sg_pair *p = arg;
	struct store_txn *t = NULL;
	struct store_put put;
	struct record r;
	struct err e = ERR_INIT;
	json_t *d = json_pack("{s:s}", "name", "first");

	memset(&put, 0, sizeof(put));
	put.collection = "items";
	put.data = d;
	record_init(&r);
	p->rc = store_begin(sg, &t, &e);
	pthread_mutex_lock(&p->lock);
	p->began = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (!p->rc) {
		usleep(300 * 1000);     /* the main thread queues meanwhile */
		p->rc = store_txn_put(t, &put, &r, NULL, &e);
		if (p->rc)
			store_abort(t);
		else
			p->rc = store_commit(t, &e);
		snprintf(p->id, sizeof(p->id), "%s", r.id);
	}
	record_release(&r);
	json_decref(d);
	return NULL;
}

Test(store_group, members_read_earlier_members)
{
	struct sg_pair p = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			     false, "", 0 };
	struct store_stats st;
	struct store_txn *t = NULL;
	struct record r;
	struct err e = ERR_INIT;
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, sg_first_member, &p), 0);
	pthread_mutex_lock(&p.lock);
	while (!p.began)
		pthread_cond_wait(&p.cond, &p.lock);
	pthread_mutex_unlock(&p.lock);
	cr_assert_eq(store_begin(sg, &t, &e), 0, "%s", e.msg);
	/* The first member's create is in the open batch, not yet
	 * committed, and visible here. */
	cr_assert_eq(store_txn_get_by_name(t, "items", "first", &r, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(r.revision, 1);
	record_release(&r);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	pthread_join(th, NULL);
	cr_assert_eq(p.rc, 0);
	store_stats(sg, &st);
	cr_assert_eq(st.commits, 2);
	cr_assert_eq(st.batches, 1, "both in one COMMIT");
	cr_assert_eq(st.max_batch, 2);
	cr_assert_eq(store_get(sg, "items", p.id, &r, &e), 0, "%s", e.msg);
	record_release(&r);
}

/* ---- thread identity -------------------------------------------------- */

struct sg_foreign {
	struct store_txn *t;
	int rc;
	struct err e;
};

static void *sg_foreign_commit(void *arg)
{
	struct sg_foreign *f = arg;

	f->rc = store_commit(f->t, &f->e);
	return NULL;
}

Test(store_group, transactions_belong_to_their_thread)
{
	struct sg_foreign f;
	struct store_txn *t = NULL, *t2 = NULL;
	struct record r;
	struct err e = ERR_INIT;
	pthread_t th;

	memset(&f, 0, sizeof(f));
	cr_assert_eq(store_begin(sg, &t, &e), 0);
	cr_assert_eq(store_begin(sg, &t2, &e), ERR_INTERNAL, "nested begin");
	cr_assert_null(t2);
	f.t = t;
	cr_assert_eq(pthread_create(&th, NULL, sg_foreign_commit, &f), 0);
	pthread_join(th, NULL);
	cr_assert_eq(f.rc, ERR_INTERNAL, "commit from another thread");
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), ERR_INTERNAL, "commit twice");
	cr_assert_eq(sg_create(sg, "after", 1, false, &r, &e), 0, "%s", e.msg);
	record_release(&r);
}

/* ---- a failing COMMIT ------------------------------------------------- */

/* Writes to the WAL fail while this is > 0 (each failure counts down). */
static _Atomic int sg_fail_writes;
static sqlite3_vfs sg_vfs;
static sqlite3_vfs *sg_real_vfs;

struct sg_file {
	sqlite3_file base;
	sqlite3_file *real;
	int flags;
};

#define SG_REAL(f) (((struct sg_file *)(f))->real)

static int sg_close(sqlite3_file *f)
{
	return SG_REAL(f)->pMethods->xClose(SG_REAL(f));
}

static int sg_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off)
{
	return SG_REAL(f)->pMethods->xRead(SG_REAL(f), b, n, off);
}

static int sg_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off)
{
	int left;

	if (((struct sg_file *)f)->flags & SQLITE_OPEN_WAL) {
		left = atomic_load(&sg_fail_writes);
		while (left > 0) {
			if (atomic_compare_exchange_weak(&sg_fail_writes, &left,
							  left - 1))
				return SQLITE_IOERR_WRITE;
		}
	}
	return SG_REAL(f)->pMethods->xWrite(SG_REAL(f), b, n, off);
}

static int sg_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return SG_REAL(f)->pMethods->xTruncate(SG_REAL(f), size);
}

static int sg_sync(sqlite3_file *f, int flags)
{
	return SG_REAL(f)->pMethods->xSync(SG_REAL(f), flags);
}

static int sg_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return SG_REAL(f)->pMethods->xFileSize(SG_REAL(f), size);
}

static int sg_lock(sqlite3_file *f, int l)
{
	return SG_REAL(f)->pMethods->xLock(SG_REAL(f), l);
}

static int sg_unlock(sqlite3_file *f, int l)
{
	return SG_REAL(f)->pMethods->xUnlock(SG_REAL(f), l);
}

static int sg_check(sqlite3_file *f, int *out)
{
	return SG_REAL(f)->pMethods->xCheckReservedLock(SG_REAL(f), out);
}

static int sg_fcntl(sqlite3_file *f, int op, void *arg)
{
	return SG_REAL(f)->pMethods->xFileControl(SG_REAL(f), op, arg);
}

static int sg_sector(sqlite3_file *f)
{
	return SG_REAL(f)->pMethods->xSectorSize(SG_REAL(f));
}

static int sg_devchar(sqlite3_file *f)
{
	return SG_REAL(f)->pMethods->xDeviceCharacteristics(SG_REAL(f));
}

static int sg_shm_map(sqlite3_file *f, int pg, int sz, int ext,
		      void volatile **pp)
{
	return SG_REAL(f)->pMethods->xShmMap(SG_REAL(f), pg, sz, ext, pp);
}

static int sg_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return SG_REAL(f)->pMethods->xShmLock(SG_REAL(f), off, n, flags);
}

static void sg_shm_barrier(sqlite3_file *f)
{
	SG_REAL(f)->pMethods->xShmBarrier(SG_REAL(f));
}

static int sg_shm_unmap(sqlite3_file *f, int del)
{
	return SG_REAL(f)->pMethods->xShmUnmap(SG_REAL(f), del);
}

static int sg_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return SG_REAL(f)->pMethods->xFetch(SG_REAL(f), off, n, pp);
}

static int sg_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return SG_REAL(f)->pMethods->xUnfetch(SG_REAL(f), off, p);
}

static const sqlite3_io_methods sg_io = {
	3, sg_close, sg_read, sg_write, sg_truncate, sg_sync, sg_size,
	sg_lock, sg_unlock, sg_check, sg_fcntl, sg_sector, sg_devchar,
	sg_shm_map, sg_shm_lock, sg_shm_barrier, sg_shm_unmap, sg_fetch,
	sg_unfetch,
};

static int sg_open_file(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
			int flags, int *outflags)
{
	struct sg_file *sf = (struct sg_file *)f;
	int rc;

	(void)vfs;
	sf->real = (sqlite3_file *)(sf + 1);
	sf->flags = flags;
	rc = sg_real_vfs->xOpen(sg_real_vfs, name, sf->real, flags, outflags);
	sf->base.pMethods = rc == SQLITE_OK ? &sg_io : NULL;
	return rc;
}

/* Make sg_vfs the default VFS of this (forked) test process. */
static void sg_install_vfs(void)
{
	sg_real_vfs = sqlite3_vfs_find(NULL);
	cr_assert_not_null(sg_real_vfs);
	cr_assert_geq(sg_real_vfs->iVersion, 1);
	sg_vfs = *sg_real_vfs;
	sg_vfs.zName = "sg-failing";
	sg_vfs.szOsFile = (int)sizeof(struct sg_file) + sg_real_vfs->szOsFile;
	sg_vfs.xOpen = sg_open_file;
	sg_vfs.pNext = NULL;
	cr_assert_eq(sqlite3_vfs_register(&sg_vfs, 1), SQLITE_OK);
}

static void sg_vfs_setup(void)
{
	sg_install_vfs();
	sg_setup();
}

static void sg_vfs_teardown(void)
{
	sg_teardown();
	sqlite3_vfs_unregister(&sg_vfs);
}

TestSuite(store_group_fail, .init = sg_vfs_setup, .fini = sg_vfs_teardown);

Test(store_group_fail, failing_commit_fails_its_batch_only)
{
	struct store_stats st;
	struct record r;
	struct err e = ERR_INIT;

	cr_assert_eq(sg_create(sg, "a", 1, false, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.revision, 1);
	record_release(&r);
	atomic_store(&sg_fail_writes, 1);
	cr_assert_neq(sg_create(sg, "b", 2, false, &r, &e), 0);
	cr_assert(strstr(e.msg, "commit"), "%s", e.msg);
	record_release(&r);
	cr_assert_eq(store_head(sg), 1, "the head did not move");
	cr_assert_eq(store_get_by_name(sg, "items", "b", &r, &e),
		     ERR_NOT_FOUND);
	record_release(&r);
	/* The store goes on; the revision of the failed batch is reused. */
	cr_assert_eq(sg_create(sg, "c", 3, false, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.revision, 2);
	record_release(&r);
	store_stats(sg, &st);
	cr_assert_eq(st.commits, 2);
	cr_assert_eq(st.failed, 1);
	store_close(sg);
	sg = tl_store_open(sg_sch, sg_dir, 0);
	cr_assert_eq(store_head(sg), 2);
	cr_assert_eq(store_get_by_name(sg, "items", "c", &r, &e), 0);
	record_release(&r);
}

/* Wait until the writers are under way, then fail one WAL write. */
static void *sg_fail_later(void *arg)
{
	(void)arg;
	while (store_head(sg) < 300)
		usleep(1000);
	atomic_store(&sg_fail_writes, 1);
	return NULL;
}

Test(store_group_fail, failing_commit_in_busy_store, .timeout = 600)
{
	struct store_stats st;
	struct sg_writer *w;
	struct record r;
	struct err e = ERR_INIT;
	pthread_t th;
	char name[48];
	double secs;
	int i, j, k, rc, failed = 0, ok = 0;
	bool acked;

	cr_assert_eq(pthread_create(&th, NULL, sg_fail_later, NULL), 0);
	w = sg_run_writers(16, 60, 0, &secs);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&sg_fail_writes), 0, "the failure happened");
	/* Each failed create is absent, each acknowledged one present, and
	 * the acknowledged revisions are still 1..n. */
	for (i = 0; i < 16; i++) {
		failed += w[i].errors;
		ok += w[i].ok;
		for (j = 0; j < 60; j++) {
			snprintf(name, sizeof(name), "ok-%d-%d", i, j);
			rc = store_get_by_name(sg, "items", name, &r, &e);
			acked = false;
			for (k = 0; k < w[i].ok; k++)
				if (rc == 0 && !strcmp(w[i].ids[k], r.id))
					acked = true;
			cr_assert_eq(rc == 0, acked,
				     "%s: present %d, acknowledged %d", name,
				     rc == 0, acked);
			record_release(&r);
		}
	}
	cr_assert_geq(failed, 1);
	cr_assert_eq(failed + ok, 16 * 60);
	cr_assert_eq(sg_check_revisions(w, 16), (size_t)ok);
	cr_assert_eq(store_head(sg), ok);
	store_stats(sg, &st);
	cr_assert_eq(st.failed, failed);
	cr_assert_eq(st.commits, ok);
	cr_log_info("failing commit: %d of %d creates failed with it", failed,
		    16 * 60);
	sg_free_writers(w, 16);
}

/* ---- SIGKILL ---------------------------------------------------------- */

static _Atomic bool sg_child_stop;
static int sg_ack_fd = -1;

/* In the child: create items forever, writing each acknowledged id (and
 * only those) to the pipe. */
static void *sg_child_writer(void *arg)
{
	struct record r;
	struct err e = ERR_INIT;
	char name[48], line[ID_LEN + 2];
	long k = (long)arg;
	int i;

	for (i = 0; !atomic_load(&sg_child_stop); i++) {
		snprintf(name, sizeof(name), "kill-%ld-%d", k, i);
		if (sg_create(sg, name, i, false, &r, &e) == 0) {
			snprintf(line, sizeof(line), "%s\n", r.id);
			if (write(sg_ack_fd, line, ID_LEN + 1) != ID_LEN + 1)
				atomic_store(&sg_child_stop, true);
		}
		record_release(&r);
	}
	return NULL;
}

static void sg_child(int fd)
{
	pthread_t th[16];
	long i;

	sg_ack_fd = fd;
	sg = tl_store_open(sg_sch, sg_dir, 0);
	for (i = 0; i < 16; i++)
		if (pthread_create(&th[i], NULL, sg_child_writer, (void *)i))
			_exit(3);
	for (i = 0; i < 16; i++)
		pthread_join(th[i], NULL);
	_exit(0);
}

Test(store_group, sigkill_keeps_acknowledged, .timeout = 600)
{
	char (*ids)[ID_LEN + 1] = calloc(100000, sizeof(*ids));
	char line[ID_LEN + 1];
	struct record r;
	struct err e = ERR_INIT;
	size_t n = 0, got = 0, i;
	int fds[2], status;
	ssize_t k;
	pid_t pid;

	cr_assert_not_null(ids);
	store_close(sg);        /* the child opens its own */
	sg = NULL;
	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		sg_child(fds[1]);
	}
	close(fds[1]);
	/* Read acknowledgements until enough, kill mid-run, then drain. */
	for (;;) {
		k = read(fds[0], line + got, sizeof(line) - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
		if (got < sizeof(line))
			continue;
		got = 0;
		cr_assert_eq(line[ID_LEN], '\n');
		cr_assert_lt(n, 100000);
		memcpy(ids[n], line, ID_LEN);
		ids[n][ID_LEN] = '\0';
		if (++n == 1500)
			kill(pid, SIGKILL);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "the child was killed, not finished (status %d)", status);
	cr_assert_geq(n, 1500);
	close(fds[0]);

	sg = tl_store_open(sg_sch, sg_dir, 0);
	for (i = 0; i < n; i++) {
		cr_assert_eq(store_get(sg, "items", ids[i], &r, &e), 0,
			     "acknowledged %s lost: %s", ids[i], e.msg);
		record_release(&r);
	}
	cr_assert_geq(store_head(sg), (int64_t)n);
	free(ids);
}

/* ---- commit hooks and status-only changes --------------------------- */

struct sg_hook {
	int calls;
	int64_t last;
};

static void sg_hook_fn(void *arg, int64_t head)
{
	struct sg_hook *h = arg;

	h->calls++;
	h->last = head;
}

static int sg_note_change(const struct store_change *c, void *arg)
{
	json_t *log = arg;

	json_array_append_new(log, json_pack("{s:I,s:s,s:b}", "rev",
					     (json_int_t)c->revision, "action",
					     c->action, "status_only",
					     c->status_only));
	return 0;
}

Test(store_group, commit_hooks_and_status_changes)
{
	struct sg_hook h = { 0, 0 }, h2 = { 0, 0 };
	struct store_txn *t = NULL;
	struct record r;
	struct err e = ERR_INIT;
	json_t *status = json_pack("{s:s}", "phase", "Ready");
	json_t *log = json_array(), *want;
	int i;

	cr_assert_eq(store_add_commit_hook(sg, sg_hook_fn, &h, &e), 0);
	for (i = 1; i < STORE_COMMIT_HOOKS; i++)
		cr_assert_eq(store_add_commit_hook(sg, sg_hook_fn, &h2, &e), 0);
	cr_assert_eq(store_add_commit_hook(sg, sg_hook_fn, &h2, &e),
		     ERR_TOO_LARGE);
	for (i = 1; i < STORE_COMMIT_HOOKS; i++)
		store_remove_commit_hook(sg, sg_hook_fn, &h2);

	cr_assert_eq(sg_create(sg, "a", 1, false, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(h.calls, 1);
	cr_assert_eq(h.last, 1, "the new head");
	cr_assert_eq(store_begin(sg, &t, &e), 0);
	cr_assert_eq(store_txn_set_status(t, "items", r.id, status, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	cr_assert_eq(h.calls, 2);
	cr_assert_eq(h.last, 2);
	cr_assert_eq(h2.calls, 0, "removed hooks are not called");
	record_release(&r);
	cr_assert_eq(store_begin(sg, &t, &e), 0);
	store_abort(t);
	cr_assert_eq(h.calls, 2, "not called on abort");
	/* A combined write runs them too, once it is durable; a failed one
	 * does not. */
	cr_assert_eq(sg_create_combined(sg, "c", 3, false, &r, &e), 0, "%s",
		     e.msg);
	cr_assert_eq(h.calls, 3);
	cr_assert_eq(h.last, 3);
	record_release(&r);
	cr_assert_eq(sg_create_combined(sg, "d", 4, true, &r, &e),
		     ERR_INVALID);
	cr_assert_eq(h.calls, 3);
	record_release(&r);
	store_remove_commit_hook(sg, sg_hook_fn, &h);
	cr_assert_eq(sg_create(sg, "b", 2, false, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(h.calls, 3);

	cr_assert_eq(store_changes(sg, 0, 0, sg_note_change, log, &e), 0);
	want = json_pack("[{s:i,s:s,s:b},{s:i,s:s,s:b},{s:i,s:s,s:b},"
			 "{s:i,s:s,s:b}]",
			 "rev", 1, "action", "create", "status_only", 0,
			 "rev", 2, "action", "update", "status_only", 1,
			 "rev", 3, "action", "create", "status_only", 0,
			 "rev", 4, "action", "create", "status_only", 0);
	cr_assert(json_equal(log, want), "%s",
		  json_dumps(log, JSON_COMPACT));
	record_release(&r);
	json_decref(want);
	json_decref(log);
	json_decref(status);
}
