/*
 * store_open.c - the SQLite store (see store.h, store_int.h): records and
 * their rows, the pool of read connections, the write connection's cached
 * statements, open and close, migrations and the schema-derived indexes.
 */
#include "store_int.h"

#include <limits.h>

/* The SQL of the write connection's and the read connections' cached
 * statements. */
const char *const wsql[W__COUNT] = {
	[W_BEGIN] = "BEGIN IMMEDIATE",
	[W_COMMIT] = "COMMIT",
	[W_ROLLBACK] = "ROLLBACK",
	[W_SAVEPOINT] = "SAVEPOINT txn",
	[W_RELEASE] = "RELEASE txn",
	[W_ROLLBACK_TO] = "ROLLBACK TO txn",
	[W_HEAD] = SQL_HEAD,
	[W_GET_ID] = SQL_GET_ID,
	[W_GET_NAME] = SQL_GET_NAME,
	[W_NAME_OWNER] = "SELECT id FROM records "
			 "WHERE collection = ?1 AND name = ?2",
	[W_EXISTS] = "SELECT 1 FROM records WHERE collection = ?1 AND id = ?2",
	[W_INSERT] = "INSERT INTO records (" REC_COLS ") "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[W_UPDATE] = "UPDATE records SET name = ?3, data = ?4, labels = ?5, "
		     "generation = ?6, revision = ?7, updated = ?8 "
		     "WHERE collection = ?1 AND id = ?2",
	[W_STATUS] = "UPDATE records SET status = ?3, revision = ?4 "
		     "WHERE collection = ?1 AND id = ?2",
	[W_LOG] = "INSERT INTO changelog "
		  "(revision, collection, id, action, record, time, actor) "
		  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[W_LOG_AMEND] = "UPDATE changelog SET record = ?5, time = ?6 "
			"WHERE revision = ?1 AND collection = ?2 AND id = ?3",
	[W_DELETE] = "DELETE FROM records WHERE collection = ?1 AND id = ?2",
	/* Record sets live in the table named for their first user, apply
	 * (schema/migrations/0001_init.sql): older data directories read as
	 * they are. */
	[W_FORGET] = "DELETE FROM applysets WHERE collection = ?1 AND id = ?2",
	[W_TRIM] = "DELETE FROM changelog WHERE revision <= ?1",
	[W_SET_GET] = "SELECT collection, id FROM applysets WHERE name = ?1 "
		      "ORDER BY collection, id",
	[W_SET_CLEAR] = "DELETE FROM applysets WHERE name = ?1",
	[W_SET_ADD] = "INSERT OR IGNORE INTO applysets (name, collection, id) "
		      "VALUES (?1, ?2, ?3)",
	[W_OWN_GET] = "SELECT owners FROM field_owners "
		      "WHERE collection = ?1 AND id = ?2",
	[W_OWN_PUT] = "INSERT OR REPLACE INTO field_owners "
		      "(collection, id, owners) VALUES (?1, ?2, ?3)",
	[W_OWN_DEL] = "DELETE FROM field_owners "
		      "WHERE collection = ?1 AND id = ?2",
	/* Two single-table lookups: a join binding the collection would
	 * be prepared again at every step (the records' partial indexes). */
	[W_DIG_NAME] = "SELECT id, revision FROM records "
		       "WHERE collection = ?1 AND name = ?2",
	[W_DIG_MATCH] = "SELECT digest_revision FROM field_owners "
			"WHERE collection = ?1 AND id = ?2 AND digest = ?3",
	/* ?3 NULL: the ownership stays as it is ({} for a new row). */
	[W_DIG_PUT] = "INSERT INTO field_owners "
		      "(collection, id, owners, digest, digest_revision, "
		      "text_digest) "
		      "VALUES (?1, ?2, coalesce(?3, '{}'), ?4, ?5, ?6) "
		      "ON CONFLICT (collection, id) DO UPDATE SET "
		      "owners = coalesce(?3, owners), digest = ?4, "
		      "digest_revision = ?5, text_digest = ?6",
	[W_DIG_ANY] = "SELECT 1 FROM field_owners WHERE collection = ?1 "
		      "AND digest IS NOT NULL LIMIT 1",
	/* By the digest alone, so that no collection is bound. */
	[W_TEXT_FIND] = "SELECT f.collection, f.id, r.name "
			"FROM field_owners f JOIN records r "
			"ON r.collection = f.collection AND r.id = f.id "
			"WHERE f.text_digest = ?1 "
			"AND r.revision = f.digest_revision LIMIT 1",
	[W_TEXT_PUT] = "UPDATE field_owners SET text_digest = ?3 "
		       "WHERE collection = ?1 AND id = ?2 "
		       "AND text_digest IS NOT ?3",
	[W_TEXT_ANY] = "SELECT 1 FROM field_owners "
		       "WHERE text_digest IS NOT NULL LIMIT 1",
	[W_RENAMES] = "SELECT coalesce((SELECT value FROM meta "
		      "WHERE key = 'renames'), 0)",
};

const char *const rsql[R__COUNT] = {
	[R_GET_ID] = SQL_GET_ID,
	[R_GET_NAME] = SQL_GET_NAME,
	[R_CHANGES] = "SELECT revision, collection, id, action, record, actor "
		      "FROM changelog WHERE revision > ?1 AND revision <= ?3 "
		      "ORDER BY revision LIMIT ?2",
	[R_CHANGE_KEYS] = "SELECT revision, collection, id, action, NULL, actor "
			  "FROM changelog WHERE revision > ?1 AND revision <= ?3 "
			  "ORDER BY revision LIMIT ?2",
	[R_OLDEST] = "SELECT min(revision) FROM changelog",
	[R_HEAD] = SQL_HEAD,
};

/* The integer in the first column of sql's first row (*isnull when the
 * value is NULL or there is no row). */
int query_int(sqlite3 *db, sqlite3_stmt *cached, const char *sql,
	      int64_t *out, bool *isnull, struct err *e)
{
	sqlite3_stmt *st = cached;
	int rc = 0, s;

	*out = 0;
	if (isnull)
		*isnull = true;
	if (!st && sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_err(e, db, "cannot prepare query");
	s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL && isnull)
			*isnull = false;
		*out = sqlite3_column_int64(st, 0);
	} else if (s != SQLITE_DONE) {
		rc = db_err(e, db, "cannot read the store");
	}
	if (cached)
		done(st);
	else
		sqlite3_finalize(st);
	return rc;
}

/* Append s as a quoted SQL identifier (q = '"') or string literal ('\''). */
static int buf_quoted(struct buf *b, const char *s, char q)
{
	if (buf_putc(b, q))
		return ERR_NOMEM;
	for (; *s; s++) {
		if (*s == q && buf_putc(b, q))
			return ERR_NOMEM;
		if (buf_putc(b, *s))
			return ERR_NOMEM;
	}
	return buf_putc(b, q);
}

/* A field name that can go into a JSON path '$.name' unquoted. */
static bool ident_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static bool is_column(const char *f)
{
	return !strcmp(f, "name") || !strcmp(f, "id") ||
	       !strcmp(f, "created") || !strcmp(f, "updated");
}

/*
 * Append the SQL expression for index field f of c: json_extract() of a
 * schema field, or one of the record columns name/id/created/updated.
 */
int index_expr(struct buf *b, const struct collection *c,
	       const char *f, struct err *e)
{
	if (collection_field(c, f)) {
		if (!ident_ok(f))
			return err_set(e, ERR_INVALID,
				       "collection '%s': field '%s' cannot be indexed (want [A-Za-z0-9_])",
				       c->name, f);
		if (buf_printf(b, "json_extract(data, '$.%s')", f))
			return nomem(e);
		return 0;
	}
	if (!is_column(f))
		return err_set(e, ERR_INVALID,
			       "collection '%s': index names unknown field '%s'",
			       c->name, f);
	if (buf_puts(b, f))
		return nomem(e);
	return 0;
}

/* " WHERE collection = '<c>'" style literal for c's partial indexes. */
int buf_coll(struct buf *b, const char *prefix,
	     const struct collection *c)
{
	if (buf_puts(b, prefix) || buf_quoted(b, c->name, '\''))
		return ERR_NOMEM;
	return 0;
}

/* "(a, b, c)" for messages. */
void index_fields(char *out, size_t size, const struct index *ix)
{
	size_t i, n = 0;

	n += (size_t)snprintf(out, size, "(");
	for (i = 0; i < ix->nfields && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%s",
				      i ? ", " : "", ix->fields[i]);
	if (n < size)
		snprintf(out + n, size - n, ")");
}

/* ---- records ---------------------------------------------------------- */

void record_init(struct record *r)
{
	memset(r, 0, sizeof(*r));
}

void record_release(struct record *r)
{
	if (!r)
		return;
	free(r->name);
	json_decref(r->data);
	json_decref(r->labels);
	json_decref(r->status);
	record_init(r);
}

json_t *record_to_json(const struct record *r)
{
	return json_pack("{s:s,s:s,s:s?,s:O?,s:O?,s:O?,s:I,s:I,s:s,s:s}",
			 "collection", r->collection, "id", r->id,
			 "name", r->name, "labels", r->labels,
			 "data", r->data, "status", r->status,
			 "generation", (json_int_t)r->generation,
			 "revision", (json_int_t)r->revision,
			 "created", r->created, "updated", r->updated);
}

json_t *record_to_public_json(const struct collection *c,
			      const struct record *r)
{
	json_t *j = record_to_json(r);
	json_t *data = json_copy(r->data);
	size_t i;

	if (!j || !data) {
		json_decref(j);
		json_decref(data);
		return NULL;
	}
	for (i = 0; i < c->nfields; i++)
		if (c->fields[i].hidden)
			json_object_del(data, c->fields[i].name);
	if (json_object_set_new(j, "data", data)) { /* data stolen */
		json_decref(j);
		return NULL;
	}
	return j;
}

const char *store_action_name(enum store_action a)
{
	switch (a) {
	case STORE_UNCHANGED:
		return "unchanged";
	case STORE_CREATED:
		return "created";
	case STORE_UPDATED:
		return "updated";
	case STORE_DELETED:
		return "deleted";
	}
	return "unknown";
}

int copy_col(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (!t || n < 0 || (size_t)n >= size)
		return -1;
	memcpy(dst, t, (size_t)n);
	dst[n] = '\0';
	return 0;
}

/* A JSON object column; NULL when absent or malformed. */
static json_t *column_object(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	json_t *v;

	if (!t)
		return NULL;
	v = json_loadb(t, (size_t)sqlite3_column_bytes(st, col), 0, NULL);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* Fill r from a row of REC_COLS. */
int record_from_row(sqlite3_stmt *st, struct record *r, struct err *e)
{
	const char *name;
	int rc;

	record_init(r);
	name = (const char *)sqlite3_column_text(st, 2);
	if (copy_col(r->collection, sizeof(r->collection), st, 0) ||
	    copy_col(r->id, sizeof(r->id), st, 1) || !name)
		goto corrupt;
	r->name = strdup(name);
	if (!r->name) {
		record_release(r);
		return nomem(e);
	}
	r->data = column_object(st, 3);
	r->labels = column_object(st, 4);
	r->status = column_object(st, 5);
	if (!r->data || !r->labels || !r->status)
		goto corrupt;
	r->generation = sqlite3_column_int64(st, 6);
	r->revision = sqlite3_column_int64(st, 7);
	if (copy_col(r->created, sizeof(r->created), st, 8) ||
	    copy_col(r->updated, sizeof(r->updated), st, 9))
		goto corrupt;
	return 0;
corrupt:
	rc = err_set(e, ERR_DB, "record '%s' of %s is corrupt in the database",
		     r->id, r->collection[0] ? r->collection : "?");
	record_release(r);
	return rc;
}

/*
 * Look a record up with a prepared SQL_GET_ID or SQL_GET_NAME statement.
 * ERR_NOT_FOUND when absent.
 */
int get_row(sqlite3 *db, sqlite3_stmt *st, const char *coll,
	    const char *key, bool by_name, struct record *out,
	    struct err *e)
{
	int rc, s;

	if (bind_text(st, 1, coll) || bind_text(st, 2, key)) {
		rc = db_err(e, db, "cannot read record");
		goto out;
	}
	s = sqlite3_step(st);
	if (s == SQLITE_ROW)
		rc = record_from_row(st, out, e);
	else if (s == SQLITE_DONE)
		rc = by_name ? err_set(e, ERR_NOT_FOUND,
				       "no %s record named '%s'", coll, key) :
			       err_set(e, ERR_NOT_FOUND,
				       "no %s record with id '%s'", coll, key);
	else
		rc = db_err(e, db, "cannot read record");
out:
	done(st);
	return rc;
}

int find_coll(const struct store *s, const char *name,
	      const struct collection **out, struct err *e)
{
	*out = name ? schema_find(s->schema, name) : NULL;
	if (!*out)
		return err_set_field(e, ERR_NOT_FOUND, "collection",
				     "unknown collection '%s'",
				     name ? name : "(null)");
	return 0;
}

/* ---- read pool -------------------------------------------------------- */

static int open_db(const char *path, int flags, sqlite3 **out,
		   struct err *e)
{
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = err_set(e, ERR_DB, "cannot open database '%s': %s", path,
			     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return rc;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	*out = db;
	return 0;
}

/*
 * Take a read connection. A thread that already holds one gets the same
 * one again (so a callback of store_list() may call store_get() without
 * waiting on itself). Blocks while all POOL_MAX are in use.
 */
int rconn_get(struct store *s, struct rconn **out, struct err *e)
{
	pthread_t self = pthread_self();
	struct rconn *c = NULL;
	int i, rc = 0;

	pthread_mutex_lock(&s->plock);
	while (!c) {
		for (i = 0; i < POOL_MAX && !c; i++)
			if (s->pool[i].refs &&
			    pthread_equal(s->pool[i].owner, self))
				c = &s->pool[i];
		for (i = 0; i < POOL_MAX && !c; i++)
			if (s->pool[i].db && !s->pool[i].refs)
				c = &s->pool[i];
		for (i = 0; i < POOL_MAX && !c; i++) {
			if (s->pool[i].db)
				continue;
			rc = open_db(s->path, SQLITE_OPEN_READONLY,
				     &s->pool[i].db, e);
			if (rc)
				goto out;
			c = &s->pool[i];
		}
		if (!c)
			pthread_cond_wait(&s->pcond, &s->plock);
	}
	c->owner = self;
	c->refs++;
	*out = c;
out:
	pthread_mutex_unlock(&s->plock);
	return rc;
}

void rconn_put(struct store *s, struct rconn *c)
{
	pthread_mutex_lock(&s->plock);
	if (--c->refs == 0)
		pthread_cond_signal(&s->pcond);
	pthread_mutex_unlock(&s->plock);
}

int rstmt(struct rconn *c, enum rst k, sqlite3_stmt **out,
	  struct err *e)
{
	int rc = prep(c->db, &c->st[k], rsql[k], e);

	*out = c->st[k];
	return rc;
}

int wstmt(struct store *s, enum wst k, sqlite3_stmt **out,
	  struct err *e)
{
	int rc;

	/* After an I/O error or a full disk SQLite may roll the whole
	 * transaction back; writing on would then autocommit piecemeal. */
	if (s->txn.active && sqlite3_get_autocommit(s->wdb)) {
		*out = NULL;
		return err_set(e, ERR_DB,
			       "the database rolled the transaction back after an error");
	}
	rc = prep(s->wdb, &s->wst[k], wsql[k], e);
	*out = s->wst[k];
	return rc;
}

/* ---- open / close ----------------------------------------------------- */

/*
 * Create the data directory (0700) and its parents when missing, and make
 * it 0700 when it was there already: a directory made beforehand with
 * `mkdir -p` (0755 under the usual umask) would otherwise let every local
 * user read the store, its WAL holding keys and password hashes.
 */
static int make_data_dir(const char *dir, struct err *e)
{
	struct stat st;
	char *parent = NULL;
	int rc = 0;

	if (mkdir(dir, 0700) == 0)
		goto out;
	if (errno == ENOENT) {
		parent = strdup(dir);
		if (!parent)
			return nomem(e);
		rc = fs_mkdirs(dirname(parent), e);
		if (rc)
			goto out;
		if (mkdir(dir, 0700) == 0)
			goto out;
	}
	if (errno != EEXIST) {
		rc = err_set(e, ERR_IO, "cannot create data directory '%s': %s",
			     dir, strerror(errno));
		goto out;
	}
out:
	if (!rc && (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)))
		rc = err_set(e, ERR_IO, "data directory '%s' is not a directory",
			     dir);
	if (!rc && (st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0)
		rc = err_set(e, ERR_IO, "cannot make data directory '%s' "
			     "private (mode 0700): %s", dir, strerror(errno));
	free(parent);
	return rc;
}

/*
 * Make path (one of the store's files) mode 0600 when it exists; a missing
 * file is fine. With create, a missing file is created empty with 0600
 * (which a umask can only narrow): SQLite takes an empty file for a new
 * database and gives its -wal and -shm files the database file's mode.
 * A symbolic link is refused rather than followed.
 */
static int make_private(const char *path, bool create, struct err *e)
{
	struct stat st;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
		  (create ? O_CREAT : 0), 0600);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return err_set(e, ERR_IO, "cannot open '%s': %s", path,
			       strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		rc = err_set(e, ERR_IO, "'%s' is not a regular file", path);
	else if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
		rc = err_set(e, ERR_IO, "cannot make '%s' private (mode "
			     "0600): %s", path, strerror(errno));
	close(fd);
	return rc;
}

/* The database file and its -wal and -shm companions, 0600. */
static int make_store_private(const struct store *s, struct err *e)
{
	static const char *const suffix[] = { "-wal", "-shm" };
	char path[PATH_MAX];
	size_t i;
	int rc;

	rc = make_private(s->path, true, e);
	for (i = 0; !rc && i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		if (snprintf(path, sizeof(path), "%s%s", s->path,
			     suffix[i]) >= (int)sizeof(path))
			return err_set(e, ERR_IO, "path too long: '%s'",
				       s->path);
		rc = make_private(path, false, e);
	}
	return rc;
}

/*
 * Before anything writes to it, make sure the file at s->path is a store
 * of ours (or a new, empty database): SQLite's own errors for a damaged or
 * foreign file ("file is not a database") name no file and no way out, and
 * enabling WAL or running the migrations would change a foreign
 * application's database. A database with tables but no user_version, or
 * a user_version but no records table, is foreign.
 */
static int check_store_file(const struct store *s, sqlite3 *db,
			    struct err *e)
{
	struct err qe = ERR_INIT;
	int64_t objects = 0, level = 0, ours = 0;
	int rc, code;

	rc = query_int(db, NULL, "SELECT count(*) FROM sqlite_master",
		       &objects, NULL, &qe);
	if (!rc)
		rc = query_int(db, NULL, "PRAGMA user_version", &level, NULL,
			       &qe);
	if (!rc)
		rc = query_int(db, NULL, "SELECT count(*) FROM sqlite_master "
			       "WHERE type = 'table' AND name IN "
			       "('records', 'changelog')", &ours, NULL, &qe);
	if (rc) {
		code = sqlite3_errcode(db) & 0xff;
		if (code != SQLITE_NOTADB && code != SQLITE_CORRUPT) {
			*e = qe;
			return rc;
		}
		return err_set(e, ERR_DB, "store '%s' is damaged or not a "
			       "database (%s): restore it from a backup, or "
			       "move it away to start an empty store; it was "
			       "left as it is", s->path, sqlite3_errmsg(db));
	}
	if ((objects > 0 && level == 0) || (level > 0 && ours < 2))
		return err_set(e, ERR_DB, "'%s' is an SQLite database but not "
			       "a pocketctl store (%lld schema objects, user_version "
			       "%lld, no records and changelog tables): "
			       "restore the store from a backup, or move the "
			       "file away; it was left as it is", s->path,
			       (long long)objects, (long long)level);
	return 0;
}

/* Refuse schemas the store cannot hold, and size the referrer cache. */
static int check_schema(struct store *s, struct err *e)
{
	const struct schema *sc = s->schema;
	size_t i, j, n = 0;

	for (i = 0; i < sc->ncollections; i++) {
		const struct collection *c = &sc->collections[i];

		if (!c->name || !*c->name ||
		    strlen(c->name) >= sizeof(((struct record *)0)->collection))
			return err_set(e, ERR_INVALID,
				       "collection name '%s' is empty or too long",
				       c->name ? c->name : "");
		for (j = 0; j < c->nfields; j++) {
			const struct field *f = &c->fields[j];

			if (f->type != FT_RELATION)
				continue;
			if (!f->target || !schema_find(sc, f->target))
				return err_set(e, ERR_INVALID,
					       "collection '%s': relation '%s' targets unknown collection '%s'",
					       c->name, f->name,
					       f->target ? f->target : "");
			if (!ident_ok(f->name))
				return err_set(e, ERR_INVALID,
					       "collection '%s': relation field '%s' needs a plain name",
					       c->name, f->name);
		}
		n += c->nfields;
	}
	s->refst = calloc(n ? n : 1, sizeof(*s->refst));
	s->fbase = calloc(sc->ncollections ? sc->ncollections : 1,
			  sizeof(*s->fbase));
	if (!s->refst || !s->fbase)
		return nomem(e);
	for (i = 0, n = 0; i < sc->ncollections; i++) {
		s->fbase[i] = n;
		n += sc->collections[i].nfields;
	}
	return 0;
}

static int too_new(const struct store *s, int64_t level, struct err *e)
{
	return err_set(e, ERR_INVALID,
		       "data directory '%s' is at store migration level %lld, newer than this pocketctl (%zu): use a newer pocketctl",
		       s->dir, (long long)level, embedded_nmigrations);
}

/* Run every pending migration, each in its own transaction. */
static int migrate(struct store *s, struct err *e)
{
	char sql[64];
	int64_t level;
	size_t i;
	int rc;

	rc = query_int(s->wdb, NULL, "PRAGMA user_version", &level, NULL, e);
	if (rc)
		return rc;
	if (level < 0 || level > (int64_t)embedded_nmigrations)
		return too_new(s, level, e);
	for (i = (size_t)level; i < embedded_nmigrations; i++) {
		const struct embedded_file *m = &embedded_migrations[i];

		rc = exec(s->wdb, "BEGIN IMMEDIATE", e);
		if (rc)
			return rc;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %zu", i + 1);
		rc = exec(s->wdb, m->data, e);
		if (!rc)
			rc = exec(s->wdb, sql, e);
		if (!rc)
			rc = exec(s->wdb, "COMMIT", e);
		if (rc) {
			sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
			return err_prefix(e, "migration '%s': ", m->name);
		}
	}
	s->migration_level = (int)embedded_nmigrations;
	return 0;
}

/* Add one wanted index: want[name] = {sql, what}. */
static int want_index(json_t *want, struct buf *name, struct buf *sql,
		      const char *what, struct err *e)
{
	json_t *v = json_pack("{s:s,s:s}", "sql", sql->ptr, "what", what);

	if (!v || json_object_set_new(want, name->ptr, v))
		return nomem(e);
	return 0;
}

/* The indexes the schema asks for: schema indexes and relation lookups. */
static int wanted_indexes(const struct schema *sc, json_t *want,
			  struct err *e)
{
	struct buf name = BUF_INIT, sql = BUF_INIT;
	char what[512];
	size_t i, j, k;
	int rc = 0;

	for (i = 0; i < sc->ncollections; i++) {
		const struct collection *c = &sc->collections[i];

		for (j = 0; j < c->nindexes; j++) {
			const struct index *ix = &c->indexes[j];

			if (!ix->nfields)
				continue;
			buf_reset(&name);
			buf_reset(&sql);
			if (buf_printf(&name, "%s_%s_%s", ix->unique ? "u" : "i",
				       c->name, ix->name) ||
			    buf_puts(&sql, ix->unique ? "CREATE UNIQUE INDEX " :
							"CREATE INDEX ") ||
			    buf_quoted(&sql, name.ptr, '"') ||
			    buf_puts(&sql, " ON records("))
				goto nomem;
			for (k = 0; k < ix->nfields; k++) {
				if (k && buf_puts(&sql, ", "))
					goto nomem;
				rc = index_expr(&sql, c, ix->fields[k], e);
				if (rc)
					goto out;
			}
			if (buf_coll(&sql, ") WHERE collection = ", c))
				goto nomem;
			snprintf(what, sizeof(what), "%s ", c->name);
			index_fields(what + strlen(what),
				     sizeof(what) - strlen(what), ix);
			rc = want_index(want, &name, &sql, what, e);
			if (rc)
				goto out;
		}
		for (j = 0; j < c->nfields; j++) {
			const struct field *f = &c->fields[j];
			bool covered = false;

			if (f->type != FT_RELATION)
				continue;
			for (k = 0; k < c->nindexes; k++)
				if (c->indexes[k].nfields &&
				    !strcmp(c->indexes[k].fields[0], f->name))
					covered = true;
			if (covered)
				continue;
			buf_reset(&name);
			buf_reset(&sql);
			if (buf_printf(&name, "r_%s_%s", c->name, f->name) ||
			    buf_puts(&sql, "CREATE INDEX ") ||
			    buf_quoted(&sql, name.ptr, '"') ||
			    buf_printf(&sql,
				       " ON records(json_extract(data, '$.%s'))",
				       f->name) ||
			    buf_coll(&sql, " WHERE collection = ", c))
				goto nomem;
			snprintf(what, sizeof(what), "%s (%s)", c->name,
				 f->name);
			rc = want_index(want, &name, &sql, what, e);
			if (rc)
				goto out;
		}
	}
	goto out;
nomem:
	rc = nomem(e);
out:
	buf_release(&name);
	buf_release(&sql);
	return rc;
}

static bool managed_index(const char *name)
{
	return (name[0] == 'u' || name[0] == 'i' || name[0] == 'r') &&
	       name[1] == '_';
}

/*
 * Bring the schema-derived indexes in line with the schema: drop the ones
 * that are gone or changed, create the missing ones. Existing records that
 * violate a new unique index make the open fail with ERR_CONFLICT.
 */
static int sync_indexes(struct store *s, struct err *e)
{
	sqlite3_stmt *st = NULL;
	json_t *want = json_object(), *drop = json_array(), *v;
	struct buf sql = BUF_INIT;
	const char *key;
	size_t i;
	int rc = 0, r;

	if (!want || !drop) {
		rc = nomem(e);
		goto out;
	}
	rc = wanted_indexes(s->schema, want, e);
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(s->wdb,
			       "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
			       "AND tbl_name = 'records' AND sql IS NOT NULL",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(e, s->wdb, "cannot list indexes");
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *have = (const char *)sqlite3_column_text(st, 1);

		if (!name || !have || !managed_index(name))
			continue;
		v = json_object_get(json_object_get(want, name), "sql");
		if (v && !strcmp(json_string_value(v), have))
			json_object_del(want, name);
		else if (json_array_append_new(drop, json_string(name)))
			goto nomem;
	}
	if (r != SQLITE_DONE) {
		rc = db_err(e, s->wdb, "cannot list indexes");
		goto out;
	}
	json_array_foreach(drop, i, v) {
		buf_reset(&sql);
		if (buf_puts(&sql, "DROP INDEX ") ||
		    buf_quoted(&sql, json_string_value(v), '"'))
			goto nomem;
		rc = exec(s->wdb, sql.ptr, e);
		if (rc)
			goto out;
	}
	json_object_foreach(want, key, v) {
		if (sqlite3_exec(s->wdb,
				 json_string_value(json_object_get(v, "sql")),
				 NULL, NULL, NULL) == SQLITE_OK)
			continue;
		if ((sqlite3_errcode(s->wdb) & 0xff) == SQLITE_CONSTRAINT)
			rc = err_set(e, ERR_CONFLICT,
				     "cannot create unique index '%s': existing records of %s are not unique",
				     key,
				     json_string_value(json_object_get(v, "what")));
		else
			rc = db_err(e, s->wdb, "cannot create index");
		goto out;
	}
	goto out;
nomem:
	rc = nomem(e);
out:
	sqlite3_finalize(st);
	json_decref(want);
	json_decref(drop);
	buf_release(&sql);
	return rc;
}

/*
 * meta.schema_version follows the schema; the value it replaces stays as
 * schema_version_previous (with schema_changed, the time of the change).
 */
static int record_schema_version(struct store *s, struct err *e)
{
	char sql[256], now[TIME_LEN + 1];
	int64_t old;
	bool isnull;
	int rc;

	rc = query_int(s->wdb, NULL,
		       "SELECT value FROM meta WHERE key = 'schema_version'",
		       &old, &isnull, e);
	if (rc)
		return rc;
	s->schema_version = s->schema->version;
	if (!isnull && old == s->schema->version)
		return 0;
	util_now(now);
	if (!isnull) {
		snprintf(sql, sizeof(sql),
			 "INSERT OR REPLACE INTO meta (key, value) VALUES "
			 "('schema_version_previous', %lld)", (long long)old);
		rc = exec(s->wdb, sql, e);
		if (rc)
			return rc;
	}
	snprintf(sql, sizeof(sql),
		 "INSERT OR REPLACE INTO meta (key, value) VALUES "
		 "('schema_version', %d), ('schema_changed', '%s')",
		 s->schema->version, now);
	return exec(s->wdb, sql, e);
}

/*
 * From now on the write connection commits with synchronous = NORMAL and
 * the store syncs the WAL itself (see group commit below): open the WAL
 * file SQLite uses, and sync its directory once so that its entry there is
 * durable too. The WAL file stays (same inode) while the database is open.
 */
static int open_wal(struct store *s, struct err *e)
{
	const char *wal = sqlite3_filename_wal(sqlite3_db_filename(s->wdb,
								   "main"));
	char *dir = NULL;
	int dfd = -1, rc = 0;

	if (!wal || !*wal)
		return err_set(e, ERR_DB, "no WAL file for '%s'", s->path);
	s->walfd = open(wal, O_RDONLY | O_CLOEXEC);
	if (s->walfd < 0)
		return err_set(e, ERR_IO, "cannot open '%s': %s", wal,
			       strerror(errno));
	dir = strdup(wal);
	if (!dir)
		return nomem(e);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		rc = err_set(e, ERR_IO, "cannot sync the directory of '%s': %s",
			     wal, strerror(errno));
		goto out;
	}
	rc = exec(s->wdb, "PRAGMA synchronous = NORMAL", e);
out:
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return rc;
}

static int open_rw(struct store *s, struct err *e)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int64_t head;
	int rc;

	rc = make_data_dir(s->dir, e);
	if (!rc)
		rc = make_store_private(s, e);
	if (rc)
		return rc;
	rc = open_db(s->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
		     &s->wdb, e);
	if (rc)
		return rc;
	rc = check_store_file(s, s->wdb, e);
	if (rc)
		return rc;
	if (sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode = WAL", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = db_err(e, s->wdb, "cannot enable WAL");
		goto out;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal")) {
		rc = err_set(e, ERR_DB,
			     "cannot enable WAL on '%s' (journal mode is '%s')",
			     s->path, mode ? mode : "");
		goto out;
	}
	sqlite3_finalize(st);   /* a pending statement would block COMMIT */
	st = NULL;
	/* temp_store = MEMORY: each member of a batch runs in a savepoint,
	 * and SQLite keeps the pages a savepoint changes in a sub-journal,
	 * which is otherwise a temporary file (an open and a pwrite per
	 * page). */
	rc = exec(s->wdb, "PRAGMA synchronous = FULL; "
		  "PRAGMA foreign_keys = OFF; "
		  "PRAGMA temp_store = MEMORY; "
		  "PRAGMA journal_size_limit = 67108864", e);
	if (rc)
		goto out;
	rc = migrate(s, e);
	if (rc)
		goto out;
	rc = exec(s->wdb, "BEGIN IMMEDIATE", e);
	if (rc)
		goto out;
	rc = sync_indexes(s, e);
	if (!rc)
		rc = record_schema_version(s, e);
	if (!rc)
		rc = exec(s->wdb, "COMMIT", e);
	if (rc) {
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	rc = query_int(s->wdb, NULL, SQL_HEAD, &head, NULL, e);
	if (!rc)
		atomic_store(&s->head, head);
	if (!rc)
		rc = open_wal(s, e);
out:
	sqlite3_finalize(st);
	return rc;
}

static int open_ro(struct store *s, struct err *e)
{
	struct rconn *c = NULL;
	struct stat st;
	int64_t level, v;
	bool isnull;
	int rc;

	if (stat(s->path, &st) < 0)
		return err_set(e, ERR_NOT_FOUND, "no store in '%s': %s",
			       s->dir, strerror(errno));
	rc = rconn_get(s, &c, e);
	if (rc)
		return rc;
	rc = check_store_file(s, c->db, e);
	if (!rc)
		rc = query_int(c->db, NULL, "PRAGMA user_version", &level,
			       NULL, e);
	if (rc)
		goto out;
	if (level < 0 || level > (int64_t)embedded_nmigrations) {
		rc = too_new(s, level, e);
		goto out;
	}
	if (level < (int64_t)embedded_nmigrations) {
		rc = err_set(e, ERR_UNAVAILABLE,
			     "store in '%s' is at migration level %lld, this pocketctl needs %zu: open it read-write once to upgrade it",
			     s->dir, (long long)level, embedded_nmigrations);
		goto out;
	}
	s->migration_level = (int)level;
	rc = query_int(c->db, NULL,
		       "SELECT value FROM meta WHERE key = 'schema_version'",
		       &v, &isnull, e);
	if (!rc)
		s->schema_version = isnull ? 0 : (int)v;
out:
	rconn_put(s, c);
	return rc;
}

/*
 * Before SQLite's first use: no memory statistics. With them on (SQLite's
 * default) every allocation SQLite makes, on every connection, takes one
 * process-wide mutex to count it; nothing here reads the counts.
 */
static void sqlite_setup(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_open(struct store **out, const struct schema *schema,
	       const struct store_options *o, struct err *e)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_mutexattr_t attr;
	struct store *s;
	int rc;

	pthread_once(&once, sqlite_setup);
	*out = NULL;
	if (!schema || !o || !o->dir || !*o->dir)
		return err_set(e, ERR_INVALID, "store: no data directory given");
	s = calloc(1, sizeof(*s));
	if (!s)
		return nomem(e);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&s->wlock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&s->plock, NULL);
	pthread_cond_init(&s->pcond, NULL);
	s->counts = countcache_new();
	pthread_mutex_init(&s->glock, NULL);
	pthread_mutex_init(&s->qlock, NULL);
	pthread_cond_init(&s->gcond, NULL);
	s->walfd = -1;
	s->schema = schema;
	s->read_only = o->read_only;
	s->keep = o->changelog_keep > 0 ? o->changelog_keep : DEFAULT_KEEP;
	s->txn.s = s;
	s->dir = strdup(o->dir);
	s->path = path_join(o->dir, DB_FILE);
	if (!s->dir || !s->path) {
		rc = nomem(e);
		goto out;
	}
	s->clean = calloc(schema->ncollections ? schema->ncollections : 1,
			  sizeof(*s->clean));
	if (!s->clean) {
		rc = nomem(e);
		goto out;
	}
	rc = check_schema(s, e);
	if (rc)
		goto out;
	rc = s->read_only ? open_ro(s, e) : open_rw(s, e);
	if (!rc)
		rc = seal_open(s, o->key_file, e);
out:
	if (rc)
		store_close(s);
	else
		*out = s;
	return rc;
}


/*
 * Before closing: roll back a transaction the calling thread left open
 * (a caller bug), commit a batch still open (none when the callers are
 * done with s), and wait until every member of the last batch has left
 * store_commit().
 */
static void flush_writer(struct store *s)
{
	int rc = pthread_mutex_lock(&s->wlock);

	if (rc && rc != EDEADLK)
		return;
	if (s->txn.active)
		txn_rollback(&s->txn);
	batch_close(s);
	pthread_mutex_unlock(&s->wlock);
	pthread_mutex_lock(&s->glock);
	while (s->inflight)
		pthread_cond_wait(&s->gcond, &s->glock);
	pthread_mutex_unlock(&s->glock);
}

void store_close(struct store *s)
{
	size_t i, j, n = 0;

	if (!s)
		return;
	seal_close(s);
	if (s->wdb)
		flush_writer(s);
	for (i = 0; i < POOL_MAX; i++) {
		for (j = 0; j < R__COUNT; j++)
			sqlite3_finalize(s->pool[i].st[j]);
		for (j = 0; j < QCACHE_SLOTS; j++) {
			sqlite3_finalize(s->pool[i].q[j].st);
			free(s->pool[i].q[j].sql);
		}
		sqlite3_close(s->pool[i].db);
	}
	for (i = 0; i < W__COUNT; i++)
		sqlite3_finalize(s->wst[i]);
	if (s->refst) {
		for (i = 0; i < s->schema->ncollections; i++)
			n += s->schema->collections[i].nfields;
		for (i = 0; i < n; i++)
			sqlite3_finalize(s->refst[i]);
	}
	if (s->wdb) {
		sqlite3_exec(s->wdb, "PRAGMA wal_checkpoint(TRUNCATE)", NULL,
			     NULL, NULL);
		sqlite3_close(s->wdb);
	}
	if (s->walfd >= 0)
		close(s->walfd);
	pthread_mutex_destroy(&s->wlock);
	pthread_mutex_destroy(&s->plock);
	countcache_free(s->counts);
	pthread_cond_destroy(&s->pcond);
	pthread_mutex_destroy(&s->glock);
	pthread_mutex_destroy(&s->qlock);
	pthread_cond_destroy(&s->gcond);
	free(s->refst);
	free(s->fbase);
	free(s->clean);
	free(s->dir);
	free(s->path);
	free(s);
}

const struct schema *store_schema(const struct store *s)
{
	return s->schema;
}

int store_schema_version(struct store *s)
{
	return s->schema_version;
}

int store_migration_level(struct store *s)
{
	return s->migration_level;
}
