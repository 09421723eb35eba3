/*
 * rctx.c - one reconciler pass and the reconcile context it sees
 * (reconcilers/reconciler.h): the records it reads, the files it writes
 * (atomic, only when the bytes differ, drift recognised by hash), the
 * artifacts it owns and their garbage collection after a good pass.
 */
#include "engine_int.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "apply.h"
#include "auth.h"
#include "buf.h"
#include "provision.h"

static void sha256_hex(const void *data, size_t len, char out[SHA_HEX])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		return;
	for (i = 0; i < n; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- artifacts -------------------------------------------------------- */

void eng_art_release(struct artifact *a)
{
	free(a->path);
	free(a->base);
	free(a->error);
	json_decref(a->conds);
	memset(a, 0, sizeof(*a));
}

/* Where path is or goes in rs->arts (kept sorted by path): a binary
 * search, so that a pass over N files costs N log N compares, not N^2. */
static size_t art_slot(const struct rstate *rs, const char *path)
{
	size_t lo = 0, hi = rs->narts, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(rs->arts[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct artifact *art_find(struct rstate *rs, const char *path)
{
	size_t i = art_slot(rs, path);

	if (i < rs->narts && !strcmp(rs->arts[i].path, path))
		return &rs->arts[i];
	return NULL;
}

/* The artifact of path, created (sorted in) when missing; NULL on OOM. */
struct artifact *eng_art_get(struct rstate *rs, const char *path)
{
	struct artifact *a = art_find(rs, path), *v, na;
	char *copy;
	size_t i, n;

	if (a)
		return a;
	memset(&na, 0, sizeof(na));
	na.wd = -1;
	na.path = strdup(path);
	copy = strdup(path);
	na.conds = json_array();
	if (na.path && copy)
		na.base = strdup(basename(copy));
	free(copy);
	if (!na.path || !na.base || !na.conds)
		goto oom;
	if (rs->narts == rs->aalloc) {
		n = rs->aalloc ? rs->aalloc * 2 : 4;
		v = realloc(rs->arts, n * sizeof(*v));
		if (!v)
			goto oom;
		rs->arts = v;
		rs->aalloc = n;
	}
	i = art_slot(rs, path);
	memmove(&rs->arts[i + 1], &rs->arts[i],
		(rs->narts - i) * sizeof(*rs->arts));
	rs->arts[i] = na;
	rs->narts++;
	return &rs->arts[i];
oom:
	eng_art_release(&na);
	return NULL;
}

static void art_remove(struct rstate *rs, size_t i)
{
	eng_art_release(&rs->arts[i]);
	memmove(&rs->arts[i], &rs->arts[i + 1],
		(rs->narts - i - 1) * sizeof(*rs->arts));
	rs->narts--;
}

static void art_set_error(struct artifact *a, const char *reason,
			  const char *msg)
{
	free(a->error);
	a->error = msg ? strdup(msg) : NULL;
	a->reason = msg ? reason : NULL;
}

/*
 * Hash of the regular file at path (walked confined from root) into sha,
 * and its mode; returns 1 when it is a regular file, 0 when missing, -1
 * when something else is there, a symlink is on the way, or it cannot be
 * read.
 */
static int file_state(const char *root, const char *path, char sha[SHA_HEX],
		      unsigned *mode)
{
	struct buf b = BUF_INIT;
	struct stat st;
	int rc;

	sha[0] = '\0';
	rc = fs_read_beneath(root, path, &b, &st, NULL);
	if (rc == 1 && !S_ISREG(st.st_mode))
		rc = -1;
	if (rc == 1) {
		*mode = st.st_mode & 07777;
		sha256_hex(b.ptr, b.len, sha);
	}
	buf_release(&b);
	return rc < 0 ? -1 : rc;
}

/* True when the file is exactly what we last wrote. */
bool eng_art_intact(const struct engine *en, const struct artifact *a)
{
	char sha[SHA_HEX];
	unsigned mode = 0;

	if (!a->sha[0])
		return false;
	if (file_state(en->paths.root, a->path, sha, &mode) != 1)
		return false;
	return !strcmp(sha, a->sha) && mode == a->mode;
}

/*
 * Remove temporaries fs_write_atomic() left behind when a process died
 * between creating and renaming them ("<base>.tmp.<pid>", other pids).
 */
static void clean_stale_tmp(const char *root, struct artifact *a)
{
	char *copy, *dir;
	struct dirent *de;
	size_t bl = strlen(a->base);
	const char *p;
	long pid;
	DIR *d = NULL;
	int dfd;

	a->cleaned = true;
	copy = strdup(a->path);
	if (!copy)
		return;
	dir = dirname(copy);
	dfd = fs_open_dir_beneath(root, dir, false, NULL);
	if (dfd >= 0)
		d = fdopendir(dfd);     /* owns dfd from here on */
	if (dfd >= 0 && !d)
		close(dfd);
	while (d && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, a->base, bl) ||
		    strncmp(de->d_name + bl, ".tmp.", 5))
			continue;
		p = de->d_name + bl + 5;
		if (!*p || strspn(p, "0123456789") != strlen(p))
			continue;
		pid = strtol(p, NULL, 10);
		if (pid == (long)getpid())
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			eng_log("removed stale temporary '%s/%s'", dir,
				de->d_name);
	}
	if (d)
		closedir(d);
	free(copy);
}

/* ---- the reconcile context -------------------------------------------- */

struct rctx {
	struct engine *en;
	struct rstate *rs;
	json_t *cache;           /* collection -> array of records */
	json_t *related;         /* rctx_related(): collection -> {id: record
	                          * or null when missing} */
	json_t *keep;            /* the arrays rctx_related() handed out */
	json_t *warnings;
	json_t *drift;           /* events of this pass */
	char now[TIME_LEN + 1];
	int64_t requeue_ms;      /* -1: none */
	bool wrote;              /* a file was replaced or removed */
	bool no_retry;           /* rctx_no_retry() */
	bool observed_set;       /* rctx_observed(): observed */
	int64_t observed;
	json_t *conds;           /* rctx_condition()s, in order */
};

static int collect_record(const struct record *r, void *arg)
{
	json_t *j = record_to_json(r);

	if (!j || json_array_append_new(arg, j))
		return ERR_NOMEM;
	return 0;
}

int rctx_records(struct rctx *c, const char *collection, json_t **out,
		 struct err *e)
{
	json_t *arr;
	int rc;

	*out = NULL;
	if (!eng_reads_has(c->rs->r, collection))
		return err_set(e, ERR_INVALID,
			       "reconciler '%s' reads '%s' without declaring it",
			       c->rs->name, collection);
	arr = json_object_get(c->cache, collection);
	if (arr) {
		*out = arr;
		return 0;
	}
	arr = json_array();
	if (!arr)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = store_list(c->en->store, collection, NULL, collect_record, arr, e);
	if (rc) {
		if (rc == ERR_NOMEM)   /* from collect_record: e not set */
			err_set(e, ERR_NOMEM, "out of memory");
		json_decref(arr);
		return rc;
	}
	/* arr is stolen by the cache, even when this fails. */
	if (json_object_set_new(c->cache, collection, arr))
		return err_set(e, ERR_NOMEM, "out of memory");
	*out = arr;                /* borrowed from the cache */
	return 0;
}

/* (created, id) order, as store_list() gives a collection. */
static int cmp_created_id(const void *pa, const void *pb)
{
	json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	const char *ca = json_string_value(json_object_get(a, "created"));
	const char *cb = json_string_value(json_object_get(b, "created"));
	int d = strcmp(ca ? ca : "", cb ? cb : "");

	if (d)
		return d;
	ca = json_string_value(json_object_get(a, "id"));
	cb = json_string_value(json_object_get(b, "id"));
	return strcmp(ca ? ca : "", cb ? cb : "");
}

/* The record id of collection, read once per pass and kept in ids (a miss
 * as null): borrowed from there, NULL when there is none. */
static int related_get(struct rctx *c, json_t *ids, const char *collection,
		       const char *id, json_t **out, struct err *e)
{
	struct record r;
	json_t *j;
	int rc;

	*out = NULL;
	j = json_object_get(ids, id);
	if (j) {
		*out = json_is_object(j) ? j : NULL;
		return 0;
	}
	record_init(&r);
	rc = store_get(c->en->store, collection, id, &r, e);
	if (rc == ERR_NOT_FOUND) {
		err_clear(e);
		record_release(&r);
		return json_object_set_new(ids, id, json_null()) ?
		       err_set(e, ERR_NOMEM, "out of memory") : 0;
	}
	if (rc) {
		record_release(&r);
		return rc;
	}
	j = record_to_json(&r);
	record_release(&r);
	/* j stolen by ids, even when this fails. */
	if (!j || json_object_set_new(ids, id, j))
		return err_set(e, ERR_NOMEM, "out of memory");
	*out = j;
	return 0;
}

/* Append rec (borrowed) to the vector *v of *n unless it is there. */
static int vec_add_once(json_t ***v, size_t *n, size_t *alloc, json_t *rec)
{
	json_t **nv;
	size_t i;

	for (i = 0; i < *n; i++)
		if ((*v)[i] == rec)
			return 0;
	if (*n == *alloc) {
		nv = realloc(*v, (*alloc ? *alloc * 2 : 8) * sizeof(*nv));
		if (!nv)
			return ERR_NOMEM;
		*v = nv;
		*alloc = *alloc ? *alloc * 2 : 8;
	}
	(*v)[(*n)++] = rec;
	return 0;
}

int rctx_related(struct rctx *c, json_t *from, const char *field,
		 const char *collection, json_t **out, struct err *e)
{
	json_t *arr = NULL, *ids, *rec, *v, *one, *target, **vec = NULL;
	size_t i, k, n, nvec = 0, avec = 0;
	int rc = 0;

	*out = NULL;
	if (!eng_reads_has(c->rs->r, collection))
		return err_set(e, ERR_INVALID,
			       "reconciler '%s' reads '%s' without declaring it",
			       c->rs->name, collection);
	/* The collection is in c->related even when from names nothing: it
	 * was read by id only (no record of it matters to this pass). */
	ids = json_object_get(c->related, collection);
	if (!ids) {
		ids = json_object();
		/* ids stolen by c->related, even when this fails. */
		if (!ids || json_object_set_new(c->related, collection, ids))
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	json_array_foreach(from, i, rec) {
		v = json_object_get(json_object_get(rec, "data"), field);
		n = json_is_array(v) ? json_array_size(v) : 1;
		for (k = 0; k < n; k++) {
			one = json_is_array(v) ? json_array_get(v, k) : v;
			if (!json_is_string(one) || !json_string_length(one))
				continue;
			rc = related_get(c, ids, collection,
					 json_string_value(one), &target, e);
			if (rc)
				goto out;
			if (target && vec_add_once(&vec, &nvec, &avec, target)) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
		}
	}
	if (nvec > 1)
		qsort(vec, nvec, sizeof(*vec), cmp_created_id);
	arr = json_array();
	for (i = 0; arr && i < nvec; i++)
		if (json_array_append(arr, vec[i]))   /* shared */
			break;
	if (!arr || i < nvec) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	/* arr stolen by c->keep, even when this fails. */
	rc = json_array_append_new(c->keep, arr);
	if (!rc)
		*out = arr;        /* borrowed from c->keep */
	arr = NULL;
	if (rc)
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	json_decref(arr);
	free(vec);
	return rc;
}

void *rctx_state(struct rctx *c)
{
	return c->rs->state;
}

void rctx_watch_dir(struct rctx *c, const char *dir)
{
	struct watch *w;
	char *copy;
	int wd;

	wd = eng_watch_add(c->en, dir, W_INPUT);
	if (wd < 0) {
		/* missing: its parent, to see it appear */
		copy = strdup(dir);
		wd = copy ? eng_watch_add(c->en, dirname(copy), W_INPUT) : -1;
		free(copy);
	}
	w = wd >= 0 ? eng_watch_by_wd(c->en, wd) : NULL;
	if (w)
		w->input = c->rs->name;
}

const char *rctx_path(struct rctx *c, const char *key)
{
	return paths_get(&c->en->paths, key);
}

char *rctx_opencode_path(struct rctx *c, const char *name)
{
	const char *p = rctx_path(c, "agents_dir");
	char *copy, *dir;

	if (!p)
		p = rctx_path(c, "opencode_json");
	if (!p || !(copy = strdup(p)))
		return NULL;
	dir = path_join(dirname(copy), name);
	free(copy);
	return dir;
}

const char *rctx_now(struct rctx *c)
{
	return c->now;
}

json_t *rctx_warnings(struct rctx *c)
{
	return c->warnings;
}

void rctx_requeue_after(struct rctx *c, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (c->requeue_ms < 0 || ms < c->requeue_ms)
		c->requeue_ms = ms;
}

void rctx_keep(struct rctx *c, const char *path, const struct err *err)
{
	struct artifact *a = eng_art_get(c->rs, path);

	if (!a)
		return;
	a->declared = true;
	art_set_error(a, "NotRendered", err ? err->msg : NULL);
}

/*
 * A hand edit in place ("echo ... > f", truncate then write) can be read
 * half-way: empty or cut short. A file that is not what we last wrote and
 * changed less than RCTX_SETTLE_MS ago is not used yet: returns its age in
 * ms, or -1 when it may be read (ours, or settled).
 */
#define RCTX_SETTLE_MS 500
static int64_t unsettled_ms(struct rctx *c, const char *path,
			    const struct buf *b, const struct stat *st)
{
	struct artifact *a = art_find(c->rs, path);
	char sha[SHA_HEX];
	struct timespec now;
	int64_t age;

	if (a && a->sha[0]) {
		sha256_hex(b->ptr, b->len, sha);
		if (!strcmp(sha, a->sha))
			return -1;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	age = ((int64_t)now.tv_sec - st->st_mtim.tv_sec) * 1000 +
	      (now.tv_nsec - st->st_mtim.tv_nsec) / 1000000;
	return age >= 0 && age < RCTX_SETTLE_MS ? age : -1;
}

int rctx_open_dir(struct rctx *c, const char *dir, struct err *e)
{
	return fs_open_dir_beneath(c->en->paths.root, dir, false, e);
}

int rctx_read(struct rctx *c, const char *path, struct buf *out,
	      bool *exists, struct err *e)
{
	struct stat st;
	int64_t age;
	int rc;

	*exists = false;
	rc = fs_read_beneath(c->en->paths.root, path, out, &st, e);
	if (rc <= 0)
		return rc;
	if (!S_ISREG(st.st_mode))
		return err_set(e, ERR_IO, "cannot read '%s': %s is in the way",
			       path, S_ISDIR(st.st_mode) ? "a directory" :
			       "something that is not a regular file");
	*exists = true;
	age = unsettled_ms(c, path, out, &st);
	if (age >= 0) {
		buf_reset(out);
		rctx_requeue_after(c, RCTX_SETTLE_MS - age);
		return err_set(e, ERR_UNAVAILABLE, "'%s' is being written "
			       "(changed %lld ms ago); read again when it "
			       "settles", path, (long long)age);
	}
	return 0;
}

static void add_event(json_t *events, const char *type, const char *reason,
		      const char *file, const char *message, const char *now)
{
	json_t *ev = json_object();

	if (!ev)
		return;
	json_object_set_new(ev, "type", eng_jstr(type));
	json_object_set_new(ev, "reason", eng_jstr(reason));
	json_object_set_new(ev, "file", eng_jstr(file));
	json_object_set_new(ev, "message", eng_jstr(message));
	json_object_set_new(ev, "time", eng_jstr(now));
	json_array_append_new(events, ev);
}

int rctx_write(struct rctx *c, const char *path, const struct buf *data,
	       mode_t mode, bool *written, struct err *e)
{
	struct artifact *a;
	struct buf cur = BUF_INIT;
	struct stat st;
	char want[SHA_HEX], have[SHA_HEX] = "", msg[512];
	const char *drift = NULL;
	unsigned have_mode = 0;
	bool exists;
	int rc = 0;

	if (written)
		*written = false;
	a = eng_art_get(c->rs, path);
	if (!a)
		return err_set(e, ERR_NOMEM, "out of memory");
	a->declared = true;
	if (!a->cleaned)
		clean_stale_tmp(c->en->paths.root, a);
	sha256_hex(data->ptr, data->len, want);
	mode &= 07777;
	rc = fs_read_beneath(c->en->paths.root, path, &cur, &st, e);
	if (rc < 0)
		goto out;
	exists = rc == 1;
	rc = 0;
	if (exists) {
		if (S_ISDIR(st.st_mode)) {
			rc = err_set(e, ERR_IO,
				     "cannot write '%s': a directory is in the way",
				     path);
			goto out;
		}
		if (S_ISREG(st.st_mode)) {
			sha256_hex(cur.ptr, cur.len, have);
			have_mode = st.st_mode & 07777;
			if (cur.len == data->len &&
			    !memcmp(cur.ptr, data->ptr, data->len) &&
			    have_mode == mode)
				goto same;
			if (a->sha[0] && strcmp(have, a->sha))
				drift = "Modified";
			else if (a->sha[0] && a->mode == mode &&
				 have_mode != mode)
				drift = "ModeChanged";
		} else if (a->sha[0]) {
			drift = "Replaced";
		}
	} else if (a->sha[0]) {
		drift = "Deleted";
	}
	rc = fs_write_beneath(c->en->paths.root, path, data->ptr, data->len,
			      mode, e);
	if (rc)
		goto out;
	if (written)
		*written = true;
	c->wrote = true;
	c->rs->writes++;
	eng_log("%s: wrote '%s' (%zu bytes)", c->rs->name, path,
		    data->len);
	if (drift) {
		snprintf(msg, sizeof(msg), "'%s' was %s outside pocketctl; restored",
			 path, !strcmp(drift, "Deleted") ? "deleted" :
			 !strcmp(drift, "ModeChanged") ? "given another mode" :
			 !strcmp(drift, "Replaced") ? "replaced" : "modified");
		add_event(c->drift, "DriftCorrected", drift, path, msg, c->now);
		eng_log_at(LOG_WARN, "%s: DriftCorrected: %s", c->rs->name, msg);
	}
same:
	memcpy(a->sha, want, sizeof(want));
	a->mode = mode;
	art_set_error(a, NULL, NULL);
out:
	if (rc) {
		art_set_error(a, "WriteFailed", e ? e->msg : "write failed");
		/* The directory may exist now even though the write failed. */
	}
	buf_release(&cur);
	return rc;
}

/* ---- writes to the store, and the pass's own status ---------------------- */

int rctx_set_status(struct rctx *c, const char *collection, const char *id,
		    const char *const *keys, json_t *fields, struct err *e)
{
	struct store_txn *t = NULL;
	struct record r;
	json_t *merged = NULL, *v;
	size_t k;
	int rc;

	if (!eng_reads_has(c->rs->r, collection))
		return err_set(e, ERR_INVALID,
			       "reconciler '%s' writes '%s' without declaring it",
			       c->rs->name, collection);
	record_init(&r);
	rc = store_begin(c->en->store, &t, e);
	if (!rc)
		rc = store_txn_get(t, collection, id, &r, e);
	if (rc == ERR_NOT_FOUND) {
		err_clear(e);
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	merged = json_is_object(r.status) ? json_deep_copy(r.status) :
					    json_object();
	if (!merged) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (k = 0; keys[k]; k++) {
		v = json_object_get(fields, keys[k]);
		if (v)
			json_object_set(merged, keys[k], v);     /* borrowed */
		else
			json_object_del(merged, keys[k]);
	}
	if (json_equal(merged, r.status))
		goto out;
	rc = store_txn_set_status(t, collection, id, merged, e);
	if (!rc)
		rc = store_commit(t, e);
	t = NULL;
out:
	store_abort(t);
	json_decref(merged);
	record_release(&r);
	return rc;
}

/* One item of rctx_update() in t. */
static int update_one(struct rctx *c, struct store_txn *t,
		      const char *collection, json_t *item, struct err *e)
{
	const char *id = json_string_value(json_object_get(item, "id"));
	json_t *st = json_object_get(item, "status");     /* borrowed */
	json_t *data = json_object_get(item, "data");     /* borrowed */
	json_t *merged = NULL, *v;
	struct record r;
	const char *k;
	int rc;

	if (!id)
		return err_set(e, ERR_INVALID, "reconciler '%s': an update of "
			       "'%s' without an id", c->rs->name, collection);
	if (json_is_true(json_object_get(item, "delete"))) {
		rc = store_txn_delete(t, collection, id, 0, e);
		if (rc == ERR_NOT_FOUND)
			err_clear(e);
		return rc == ERR_NOT_FOUND ? 0 : rc;
	}
	record_init(&r);
	rc = store_txn_get(t, collection, id, &r, e);
	if (rc == ERR_NOT_FOUND) {
		err_clear(e);
		return 0;
	}
	if (!rc && json_is_object(data))
		/* json_incref: store_txn_patch() steals its data */
		rc = store_txn_patch(t, &r, json_incref(data), e);
	if (!rc && json_is_object(st)) {
		merged = json_is_object(r.status) ? json_deep_copy(r.status) :
						    json_object();
		if (!merged)
			rc = err_set(e, ERR_NOMEM, "out of memory");
		json_object_foreach(st, k, v) {
			if (rc)
				break;
			if (json_is_null(v))
				json_object_del(merged, k);
			else
				json_object_set(merged, k, v);  /* borrowed */
		}
		if (!rc && !json_equal(merged, r.status))
			rc = store_txn_set_status(t, collection, id, merged, e);
	}
	json_decref(merged);
	record_release(&r);
	return rc;
}

int rctx_update(struct rctx *c, const char *collection, json_t *items,
		struct err *e)
{
	struct store_txn *t = NULL;
	json_t *item;
	size_t i;
	int rc;

	if (!eng_reads_has(c->rs->r, collection))
		return err_set(e, ERR_INVALID,
			       "reconciler '%s' writes '%s' without declaring it",
			       c->rs->name, collection);
	if (!json_array_size(items))
		return 0;
	rc = store_begin(c->en->store, &t, e);
	json_array_foreach(items, i, item) {
		if (rc)
			break;
		rc = update_one(c, t, collection, item, e);
	}
	if (!rc)
		rc = store_commit(t, e);
	else
		store_abort(t);
	return rc;
}

int rctx_provision(struct rctx *c, const char *dir, json_t **report,
		   struct err *e)
{
	return provision_sync(c->en->store, c->en->paths.root, dir, report,
			      e);
}

int rctx_backup(struct rctx *c, const char *dir, const char *prefix,
		char **path, int64_t *revision, int64_t *size, struct err *e)
{
	struct store_backup_opts o = { dir, NULL, prefix };
	struct store_backup_info info = { NULL, 0, 0 };
	int rc = store_backup(c->en->store, &o, &info, e);

	*path = info.path;   /* taken over: not released below */
	*revision = info.revision;
	*size = info.size;
	return rc;
}

const struct schema *rctx_schema(struct rctx *c)
{
	return c->en->schema;
}

int rctx_transact(struct rctx *c,
		  int (*fn)(struct store_txn *t, void *arg, struct err *e),
		  void *arg, struct err *e)
{
	return store_write(c->en->store, fn, arg, e);
}

int rctx_apply(struct rctx *c, const char *dir, const char *applyset,
	       struct err_list *errs, json_t **result, int *load_rc,
	       struct err *e)
{
	const char *paths[1] = { dir };
	struct apply_paths l = { rctx_schema(c), paths, 1, 0 };
	struct manifest_set set = { NULL, 0, 0 };
	struct apply_opts ao;
	struct auth_keys k;
	int rc = 0;

	*load_rc = 0;
	memset(&ao, 0, sizeof(ao));
	ao.errors = errs;
	memset(&k, 0, sizeof(k));
	if (applyset && *applyset) {
		ao.applyset = applyset;
		ao.prune = true;
	}
	/* The installation key, for masked secrets in the checkout. */
	if (c->en->data_dir)
		rc = auth_keys_load_or_create(c->en->data_dir, &k, e);
	if (!rc) {
		ao.keys = c->en->data_dir ? &k : NULL;
		rc = apply_run_load(c->en->store, apply_load_paths, &l, &set,
				    &ao, result, e);
		*load_rc = l.rc;
	}
	auth_keys_wipe(&k);
	manifest_set_release(&set);
	return rc;
}

void rctx_git_state(struct rctx *c, const char *dir, char rev[64],
		    bool *dirty)
{
	(void)c;
	eng_git_state(dir, rev, dirty);
}

void rctx_watch_tree(struct rctx *c, const char *dir)
{
	struct rstate *rs = c->rs;
	struct watch *w;
	char *refs;
	int wd;

	eng_watch_tree(c->en, dir, rs->name, 0);
	if (!rs->git_looked) {
		rs->git_looked = true;
		rs->git_dir = eng_git_dir_of(dir);
		if (!rs->git_dir)
			return;
		wd = eng_watch_add(c->en, rs->git_dir, W_GIT_DIR);
		w = wd >= 0 ? eng_watch_by_wd(c->en, wd) : NULL;
		if (w)
			w->input = rs->name;
		refs = path_join(rs->git_dir, "refs/heads");
		wd = refs ? eng_watch_add(c->en, refs, W_GIT_REFS) : -1;
		w = wd >= 0 ? eng_watch_by_wd(c->en, wd) : NULL;
		if (w)
			w->input = rs->name;
		free(refs);
	}
}

void rctx_status_set(struct rctx *c, const char *key, json_t *v)
{
	if (!key || eng_status_key(key))
		json_decref(v);
	else
		json_object_set_new(c->rs->extra, key, v);   /* v stolen */
}

void rctx_condition(struct rctx *c, const char *type, const char *status,
		    const char *reason, const char *message)
{
	json_array_append_new(c->conds, json_pack(
		"{s:s, s:s, s:s, s:o}", "type", type, "status", status,
		"reason", reason, "message", eng_jstr(message)));
}

void rctx_no_retry(struct rctx *c)
{
	c->no_retry = true;
}

void rctx_observed(struct rctx *c, int64_t rev)
{
	c->observed_set = true;
	c->observed = rev;
}

void rctx_log(struct rctx *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	eng_log("%s: %s", c->rs->name, line);
}

/*
 * True when path lies in (or below) one of the directories the paths
 * configuration p renders into: each directory key itself (agents_dir)
 * and the parent of every other path (so <root>/workspace/.opencode/skills/<name>/SKILL.md
 * counts).
 */
static bool in_dirs_of(const struct paths *p, const char *path)
{
	const char *d, *slash;
	size_t pl, i;

	for (i = 0; i < p->n; i++) {
		d = p->p[i];
		if (!d)
			continue;
		pl = strlen(d);
		if (!p->dir[i]) {
			slash = strrchr(d, '/');
			pl = slash ? (size_t)(slash - d) : 0;
		}
		if (pl && !strncmp(d, path, pl) && path[pl] == '/')
			return true;
	}
	return false;
}

/*
 * True when path lies in a directory the current paths configuration, or
 * the one before the last reload (engine_reload(): its files move), renders
 * into. A file owned under an older root or an older configuration of an
 * earlier run is let go, not deleted: changing --root must never delete
 * the files of the previous one.
 */
static bool in_rendered_dir(const struct engine *en, const char *path)
{
	return in_dirs_of(&en->paths, path) || in_dirs_of(&en->old_paths, path);
}

/*
 * After a good pass: delete the files the reconciler owned before but did
 * not declare this time - only when they are in a directory we render into
 * and still hold what we wrote (a file changed by hand, or left under an
 * older root, is let go with a warning, not deleted).
 */
static int collect_garbage(struct rctx *c, struct err *e)
{
	struct rstate *rs = c->rs;
	struct artifact *a;
	size_t i = rs->narts;
	int rc = 0;

	while (i-- > 0) {
		a = &rs->arts[i];
		if (a->declared)
			continue;
		if (!in_rendered_dir(c->en, a->path)) {
			eng_log("%s: no longer managing '%s' (outside the configured paths); left in place",
				    rs->name, a->path);
		} else if (eng_art_intact(c->en, a)) {
			struct err ue = ERR_INIT;

			if (fs_unlink_beneath(c->en->paths.root, a->path,
					      &ue)) {
				if (!rc)
					rc = err_set(e, ue.code, "%s", ue.msg);
				art_set_error(a, "RemoveFailed", ue.msg);
				a->declared = true;
				continue;
			}
			c->wrote = true;
			eng_log("%s: removed '%s' (no longer rendered)",
				    rs->name, a->path);
		} else if (a->sha[0] && access(a->path, F_OK) == 0) {
			char msg[600];

			snprintf(msg, sizeof(msg),
				 "'%s' is no longer rendered but was changed by hand: left in place, no longer managed",
				 a->path);
			json_array_append_new(c->warnings, eng_jstr(msg));
		}
		art_remove(rs, i);
	}
	return rc;
}

/* Enqueue the reconcilers that read rendered files ("@files"). */
static void trigger_files(struct engine *en, const struct rstate *self)
{
	size_t i;

	for (i = 0; i < en->nrs; i++)
		if (&en->rs[i] != self &&
		    eng_reads_has(en->rs[i].r, RECONCILER_READS_FILES))
			workq_add(en->q, en->rs[i].name, util_monotonic_ms());
}

/*
 * What the next change of a record must touch to wake rs (change_matters()
 * in engine.c): after a good pass, for each collection it read
 * only by id (rctx_related(), never rctx_records()), the ids it read, found
 * or not; after a failed one, nothing (every change wakes it).
 */
static void set_deps(struct rstate *rs, json_t *related, json_t *cache)
{
	json_t *deps = NULL, *ids;
	const char *coll;

	json_decref(rs->deps);
	rs->deps = NULL;
	if (!related || !json_object_size(related))
		return;
	deps = json_object();
	json_object_foreach(related, coll, ids) {
		if (json_object_get(cache, coll))
			continue;   /* listed too: every change matters */
		/* ids shared: the pass's snapshot is not changed after this */
		if (!deps || json_object_set(deps, coll, ids)) {
			json_decref(deps);
			return;     /* out of memory: wake on every change */
		}
	}
	rs->deps = deps;
}

/* The change log names what a pass writes (its status too)
 * "reconciler/NAME". */
static void eng_name_writer(const struct rstate *rs)
{
	char label[STORE_WRITER_MAX];

	snprintf(label, sizeof(label), "reconciler/%s", rs->name);
	store_set_thread_writer(label);
}

void eng_run_pass(struct engine *en, struct rstate *rs)
{
	struct rctx c;
	struct err e = ERR_INIT;
	enum workq_outcome out;
	json_t *ev;
	int64_t t0 = util_monotonic_ms(), start_rev = rs->data_rev, delay;
	size_t i;
	int rc;

	memset(&c, 0, sizeof(c));
	c.en = en;
	c.rs = rs;
	c.requeue_ms = -1;
	c.cache = json_object();
	c.related = json_object();
	c.keep = json_array();
	c.warnings = json_array();
	c.drift = json_array();
	c.conds = json_array();
	util_now(c.now);
	if (!c.cache || !c.related || !c.keep || !c.warnings || !c.drift ||
	    !c.conds) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < rs->narts; i++)
		rs->arts[i].declared = false;
	eng_name_writer(rs);
	rc = rs->r->reconcile(&c, &e);
	if (!rc)
		rc = collect_garbage(&c, &e);
	if (rc && !e.msg[0])
		err_set(&e, rc, "reconciler '%s' failed (%s)", rs->name,
			err_name(rc));
done:
	out = rc && !c.no_retry ? WORKQ_FAILED :
	      !rc && c.requeue_ms >= 0 ? WORKQ_REQUEUE : WORKQ_OK;
	delay = workq_done(en->q, rs->name, out, c.requeue_ms,
			   util_monotonic_ms());
	rs->passes++;
	atomic_fetch_add(&en->passes, 1);
	if (rc && rs->failures == 0)
		eng_log_at(LOG_ERROR, "%s: Degraded: %s", rs->name, e.msg);
	else if (!rc && rs->failures > 0)
		eng_log("%s: recovered after %d failed attempts", rs->name,
			    rs->failures);
	eng_set_conditions(rs, rc, &e, delay, c.warnings, c.now);
	if (rc && c.no_retry)
		rs->next_retry[0] = '\0';
	json_array_foreach(c.conds, i, ev)
		eng_cond_set(rs->conds,
			     json_string_value(json_object_get(ev, "type")),
			     json_string_value(json_object_get(ev, "status")),
			     json_string_value(json_object_get(ev, "reason")),
			     json_string_value(json_object_get(ev, "message")),
			     c.now);
	/* A paths.yaml that a reload refused (the old paths still hold). */
	if (en->paths_error && rs->r->paths)
		eng_cond_set(rs->conds, "Degraded", "True", "PathsInvalid",
			     en->paths_error, c.now);
	if (!rc)
		rs->observed_rev = c.observed_set ? c.observed : start_rev;
	set_deps(rs, rc ? NULL : c.related, c.cache);
	json_array_foreach(c.drift, i, ev)
		json_array_append(rs->events, ev);
	rs->drift += json_array_size(c.drift);
	rs->errors += rc != 0;
	eng_trim_events(rs->events);
	eng_persist(en, rs);
	store_set_thread_writer(NULL);
	if (c.wrote)
		trigger_files(en, rs);
	eng_watch_artifacts(en, rs);
	rs->last_ms = util_monotonic_ms() - t0;
	rs->total_ms += rs->last_ms;
	json_decref(c.cache);
	json_decref(c.related);
	json_decref(c.keep);
	json_decref(c.warnings);
	json_decref(c.drift);
	json_decref(c.conds);
}
