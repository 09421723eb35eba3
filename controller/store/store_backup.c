/*
 * store_backup.c - online backups of the SQLite store and their restore
 * (see store.h). A backup is SQLite's backup API run from one read
 * transaction of a connection of its own, so it copies one consistent
 * snapshot (records and change log together) in bounded steps while
 * writers go on in WAL mode; it never copies the live WAL files. Both a
 * backup and a restore write a temporary file beside their target, fsync
 * it and rename it into place, so a crash leaves the old file or the new.
 */
#include "store_int.h"

#include <dirent.h>

#define BACKUP_STEP_PAGES 256    /* pages copied per sqlite3_backup_step() */
#define TS_LEN 16                /* "20261206T222000Z" */
#define TMP_PREFIX ".pocket-tmp-"
#define TMP_STALE_S (60 * 60)    /* a temporary file untouched this long
                                  * was left by a killed backup */

/* "20261206T222000Z" for now (UTC). */
static void stamp(char out[TS_LEN + 1])
{
	struct tm tm;
	time_t t = time(NULL);

	gmtime_r(&t, &tm);
	strftime(out, TS_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

/* fsync the file at path, or the directory when dir. */
static int sync_path(const char *path, bool dir, struct err *e)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = err_set(e, ERR_IO, "cannot sync '%s': %s", path,
			     strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * Remove the temporary files in dir that a killed backup or restore left
 * behind: ".pocket-tmp-*" not written for TMP_STALE_S. One still being
 * written is touched with every step, so it is never that old.
 */
static void remove_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;
	char *path;
	time_t now = time(NULL);

	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			continue;
		path = path_join(dir, de->d_name);
		if (path && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    now - st.st_mtime > TMP_STALE_S)
			unlink(path);
		free(path);
	}
	if (d)
		closedir(d);
}

/* A new empty temporary file in dir; *out (caller frees, unlinks). */
static int make_temp(const char *dir, char **out, struct err *e)
{
	char *p = path_join(dir, TMP_PREFIX "XXXXXX");
	int fd;

	*out = NULL;
	if (!p)
		return nomem(e);
	remove_stale(dir);
	fd = mkostemp(p, O_CLOEXEC);
	if (fd < 0) {
		err_set(e, ERR_IO, "cannot create a file in '%s': %s", dir,
			strerror(errno));
		free(p);
		return e->code;
	}
	fchmod(fd, 0600);
	close(fd);
	*out = p;
	return 0;
}

/*
 * Copy the database of src (its "main", inside the read transaction the
 * caller holds, or one backup_step takes) into the empty file at path, in
 * steps, and leave it a self-contained rollback-journal database.
 */
static int copy_db(sqlite3 *src, const char *path, struct err *e)
{
	sqlite3 *dst = NULL;
	sqlite3_backup *b = NULL;
	int rc = 0, s;

	if (sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = db_err(e, dst, "cannot open the backup file");
		goto out;
	}
	/* A fresh file that is renamed into place only once complete: it
	 * needs no journal of its own while it is written. */
	rc = exec(dst, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF", e);
	if (rc)
		goto out;
	b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		rc = db_err(e, dst, "cannot start the backup");
		goto out;
	}
	do {
		s = sqlite3_backup_step(b, BACKUP_STEP_PAGES);
	} while (s == SQLITE_OK || s == SQLITE_BUSY || s == SQLITE_LOCKED);
	s = sqlite3_backup_finish(b);
	b = NULL;
	if (s != SQLITE_OK) {
		rc = db_err(e, dst, "cannot copy the store");
		goto out;
	}
	rc = exec(dst, "PRAGMA journal_mode = DELETE", e);
out:
	if (b)
		sqlite3_backup_finish(b);
	if (dst && sqlite3_close(dst) != SQLITE_OK && !rc)
		rc = err_set(e, ERR_DB, "cannot close the backup file");
	return rc;
}

void store_backup_info_release(struct store_backup_info *b)
{
	if (!b)
		return;
	free(b->path);
	memset(b, 0, sizeof(*b));
}

int store_backup(struct store *s, const struct store_backup_opts *o,
		 struct store_backup_info *out, struct err *e)
{
	sqlite3 *src = NULL;
	char *tmp = NULL, *name = NULL, *path = NULL;
	char ts[TS_LEN + 1];
	struct stat st;
	int64_t head = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (o->file && !path_component_ok(o->file))
		return err_set(e, ERR_INVALID,
			       "backup file name '%s' is not a plain file name",
			       o->file);
	/* A directory made here is ours (0700); one that exists is left as
	 * it is. */
	if (stat(o->dir, &st) < 0) {
		rc = fs_mkdirs(o->dir, e);
		if (rc)
			return rc;
		chmod(o->dir, 0700);
	}
	rc = make_temp(o->dir, &tmp, e);
	if (rc)
		return rc;
	/* A connection of its own: the backup holds it in one read
	 * transaction (one WAL snapshot) from the first page to the last,
	 * which blocks no writer. */
	if (sqlite3_open_v2(s->path, &src, SQLITE_OPEN_READONLY |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = db_err(e, src, "cannot open the store for a backup");
		goto out;
	}
	sqlite3_busy_timeout(src, BUSY_TIMEOUT_MS);
	rc = exec(src, "BEGIN", e);
	if (!rc)
		rc = query_int(src, NULL, SQL_HEAD, &head, NULL, e);
	if (!rc)
		rc = copy_db(src, tmp, e);
	if (rc)
		goto out;
	stamp(ts);
	if (o->file)
		name = strdup(o->file);
	else if (asprintf(&name, "%s%s-r%lld.db",
			  o->prefix ? o->prefix : STORE_BACKUP_PREFIX, ts,
			  (long long)head) < 0)
		name = NULL;
	path = name ? path_join(o->dir, name) : NULL;
	if (!path) {
		rc = nomem(e);
		goto out;
	}
	rc = sync_path(tmp, false, e);
	if (rc)
		goto out;
	if (rename(tmp, path) < 0) {
		rc = err_set(e, ERR_IO, "cannot rename the backup to '%s': %s",
			     path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	rc = sync_path(o->dir, true, e);
	if (rc)
		goto out;
	if (stat(path, &st) == 0)
		out->size = (int64_t)st.st_size;
	out->revision = head;
	out->path = path;
	path = NULL;
out:
	sqlite3_close(src);   /* ends the read transaction */
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(name);
	free(path);
	return rc;
}

/* ---- checking a backup ------------------------------------------------- */

/* The first column of sql's first row as text into out ("" when none). */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t n,
		      struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, s;

	out[0] = '\0';
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_err(e, db, "cannot read the file");
	s = sqlite3_step(st);
	if (s == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	else if (s != SQLITE_ROW && s != SQLITE_DONE)
		rc = db_err(e, db, "cannot read the file");
	sqlite3_finalize(st);
	return rc;
}

int store_backup_check(const struct schema *schema, const char *path,
		       struct store_backup_info *out, struct err *e)
{
	sqlite3 *db = NULL;
	struct err le = ERR_INIT;
	char *uri = NULL, ok[256];
	int64_t level = 0, version = 0, head = 0, tables = 0;
	bool isnull = true;
	struct stat st;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (stat(path, &st) < 0)
		return err_set(e, ERR_INVALID, "cannot read '%s': %s", path,
			       strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(e, ERR_INVALID, "'%s' is not a regular file",
			       path);
	/* immutable: read the file as it is, creating no -wal or -shm
	 * beside it and writing nothing into it. */
	uri = sqlite3_mprintf("file:%s?immutable=1", path);
	if (!uri)
		return nomem(e);
	if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = err_set(e, ERR_INVALID, "'%s' is not a store backup: %s",
			     path, db ? sqlite3_errmsg(db) : "cannot open");
		goto out;
	}
	if (query_text(db, "PRAGMA integrity_check", ok, sizeof(ok), &le) ||
	    strcmp(ok, "ok")) {
		rc = err_set(e, ERR_INVALID,
			     "'%s' is not a sound store database (%s)", path,
			     le.code ? sqlite3_errmsg(db) : ok);
		goto out;
	}
	rc = query_int(db, NULL,
		       "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
		       "AND name IN ('records', 'changelog', 'meta')",
		       &tables, NULL, e);
	if (!rc)
		rc = query_int(db, NULL, "PRAGMA user_version", &level, NULL, e);
	if (rc)
		goto out;
	if (tables != 3 || level < 1) {
		rc = err_set(e, ERR_INVALID,
			     "'%s' is not a pocketctl store (no records, change log and meta tables)",
			     path);
		goto out;
	}
	if (level > (int64_t)embedded_nmigrations) {
		rc = err_set(e, ERR_INVALID,
			     "'%s' is at store migration level %lld, newer than this pocketctl (%zu)",
			     path, (long long)level, embedded_nmigrations);
		goto out;
	}
	rc = query_int(db, NULL,
		       "SELECT value FROM meta WHERE key = 'schema_version'",
		       &version, &isnull, e);
	if (!rc)
		rc = query_int(db, NULL, SQL_HEAD, &head, NULL, e);
	if (rc)
		goto out;
	if (!isnull && version > schema->version) {
		rc = err_set(e, ERR_INVALID,
			     "'%s' holds schema version %lld, newer than this pocketctl's (%d)",
			     path, (long long)version, schema->version);
		goto out;
	}
	out->revision = head;
	out->size = (int64_t)st.st_size;
	out->path = strdup(path);
	if (!out->path)
		rc = nomem(e);
out:
	if (rc && e->code != ERR_NOMEM && e->code != ERR_INVALID)
		err_prefix(e, "'%s': ", path);
	sqlite3_close(db);
	sqlite3_free(uri);
	return rc;
}

/* ---- restore ------------------------------------------------------------ */

/* Copy the file at from into the new file at to (then fsync'd). */
static int copy_file(const char *from, const char *to, struct err *e)
{
	char chunk[1 << 16];
	int in = -1, outfd = -1, rc = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	outfd = open(to, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (in < 0 || outfd < 0) {
		rc = err_set(e, ERR_IO, "cannot open '%s': %s",
			     in < 0 ? from : to, strerror(errno));
		goto out;
	}
	while ((n = read(in, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(outfd, chunk, (size_t)n) != n) {
			rc = err_set(e, ERR_IO, "cannot copy '%s': %s", from,
				     strerror(errno));
			goto out;
		}
	}
	if (fsync(outfd) < 0)
		rc = err_set(e, ERR_IO, "cannot sync '%s': %s", to,
			     strerror(errno));
out:
	if (in >= 0)
		close(in);
	if (outfd >= 0)
		close(outfd);
	return rc;
}

/* Fold the WAL of the store at db into it and remove the WAL files, so
 * that pocket.db alone is the whole store. */
static int checkpoint(const char *db, struct err *e)
{
	sqlite3 *c = NULL;
	int rc = 0;

	if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = db_err(e, c, "cannot open the current store");
		goto out;
	}
	sqlite3_busy_timeout(c, BUSY_TIMEOUT_MS);
	rc = exec(c, "PRAGMA wal_checkpoint(TRUNCATE); "
		  "PRAGMA journal_mode = DELETE", e);
out:
	if (sqlite3_close(c) != SQLITE_OK && !rc)
		rc = err_set(e, ERR_DB, "cannot close the current store");
	return rc;
}

int store_restore(const struct schema *schema, const char *dir,
		  const char *from, char **replaced, struct err *e)
{
	struct store_backup_info info = { 0 };
	char *db = NULL, *tmp = NULL, *aside = NULL, ts[TS_LEN + 1];
	struct stat st;
	int rc;

	*replaced = NULL;
	rc = store_backup_check(schema, from, &info, e);
	if (rc)
		return rc;
	db = path_join(dir, DB_FILE);
	if (!db) {
		rc = nomem(e);
		goto out;
	}
	rc = fs_mkdirs(dir, e);
	if (!rc)
		rc = make_temp(dir, &tmp, e);
	if (!rc)
		rc = copy_file(from, tmp, e);
	if (rc)
		goto out;
	if (stat(db, &st) == 0) {
		rc = checkpoint(db, e);
		if (rc)
			goto out;
		stamp(ts);
		if (asprintf(&aside, "%s.replaced-%s", db, ts) < 0) {
			aside = NULL;
			rc = nomem(e);
			goto out;
		}
		if (link(db, aside) < 0) {
			rc = err_set(e, ERR_IO, "cannot keep '%s' as '%s': %s",
				     db, aside, strerror(errno));
			goto out;
		}
	}
	/* One rename replaces the store: a crash before it leaves the old
	 * one in place (and its copy aside), after it the backup. */
	if (rename(tmp, db) < 0) {
		rc = err_set(e, ERR_IO, "cannot install '%s' as '%s': %s",
			     from, db, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	rc = sync_path(dir, true, e);
	*replaced = aside;
	aside = NULL;
out:
	if (tmp)
		unlink(tmp);
	if (rc && aside)
		unlink(aside);
	free(tmp);
	free(aside);
	free(db);
	store_backup_info_release(&info);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_backup_list(const char *dir, json_t **out, struct err *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	json_t *items = json_array(), *item;
	char **names = NULL, **grown, path[4096], mod[TIME_LEN + 1];
	size_t n = 0, cap = 0, i, len;
	struct stat st;
	struct tm tm;
	int rc = 0;

	*out = NULL;
	if (!items) {
		rc = nomem(e);
		goto out;
	}
	if (!d && errno != ENOENT) {
		rc = err_set(e, ERR_IO, "cannot list '%s': %s", dir,
			     strerror(errno));
		goto out;
	}
	while (d && (de = readdir(d))) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 4 ||
		    strcmp(de->d_name + len - 3, ".db"))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			grown = realloc(names, cap * sizeof(*names));
			if (!grown)
				goto nomem;
			names = grown;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto nomem;
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		gmtime_r(&st.st_mtime, &tm);
		strftime(mod, sizeof(mod), "%Y-%m-%d %H:%M:%S.000Z", &tm);
		item = json_pack("{s:s,s:I,s:s}", "key", names[i],
				 "size", (json_int_t)st.st_size,
				 "modified", mod);
		if (json_array_append_new(items, item))
			goto nomem;
	}
	*out = items;
	items = NULL;
	goto out;
nomem:
	rc = nomem(e);
out:
	if (d)
		closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	json_decref(items);
	return rc;
}
