/*
 * store_digest.c - apply digests in the SQLite store (see store.h, "apply
 * digests"): columns digest and digest_revision of the record's row in
 * field_owners (schema/migrations/0005_digest_row.sql), holding what its
 * last apply declared and the record's revision right after, so that an
 * unchanged re-apply is one indexed lookup per document, and a first
 * apply writes one side row per record, not two; and column text_digest
 * (0006_text_digest.sql), the digest of the text it was declared in.
 */
#include "store_int.h"

int store_txn_digest_match(struct store_txn *t, const char *collection,
			   const char *name, const void *digest, size_t len,
			   char id_out[ID_LEN + 1], struct err *e)
{
	sqlite3_stmt *st = NULL;
	char id[ID_LEN + 1] = "";
	int64_t rev = 0;
	int rc, r;

	id_out[0] = '\0';
	if (!t || !collection || !name || !digest || !len)
		return err_set(e, ERR_INTERNAL,
			       "store_txn_digest_match: bad call");
	/* The record's id and revision, then its digest row. */
	rc = wstmt(t->s, W_DIG_NAME, &st, e);
	if (rc)
		return rc;
	if (bind_text(st, 1, collection) || bind_text(st, 2, name))
		goto dberr;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		copy_col(id, sizeof(id), st, 0);
		rev = sqlite3_column_int64(st, 1);
	} else if (r != SQLITE_DONE) {
		goto dberr;
	}
	done(st);
	st = NULL;
	if (!id[0])
		return 0;
	rc = wstmt(t->s, W_DIG_MATCH, &st, e);
	if (rc)
		return rc;
	if (bind_text(st, 1, collection) || bind_text(st, 2, id) ||
	    sqlite3_bind_blob(st, 3, digest, (int)len, SQLITE_STATIC) !=
		    SQLITE_OK)
		goto dberr;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW && sqlite3_column_int64(st, 0) == rev)
		memcpy(id_out, id, sizeof(id));
	else if (r != SQLITE_ROW && r != SQLITE_DONE)
		goto dberr;
	done(st);
	return 0;
dberr:
	rc = db_err(e, t->s->wdb, "cannot read apply digest");
	done(st);
	return rc;
}

int store_txn_declared_put(struct store_txn *t, const char *collection,
			   const char *id, const json_t *owners,
			   int64_t revision, const void *digest,
			   const void *text, size_t len, struct err *e)
{
	struct err le = ERR_INIT;
	sqlite3_stmt *st;
	int rc, b = 0;

	if (!t || !collection || !id || (owners && !json_is_object(owners)) ||
	    (digest && !len) || (text && !digest))
		return err_set(e, ERR_INTERNAL,
			       "store_txn_declared_put: bad call");
	if (!digest)    /* the row without a digest */
		return owners ? store_txn_owners_put(t, collection, id, owners,
						     e) : 0;
	rc = owners ? owners_check(owners, e) : 0;
	if (!rc)
		rc = wstmt(t->s, W_DIG_PUT, &st, e);
	if (rc)
		return rc;
	b |= bind_text(st, 1, collection);
	b |= bind_text(st, 2, id);
	if (owners)
		b |= bind_json(st, 3, owners);
	b |= sqlite3_bind_blob(st, 4, digest, (int)len, SQLITE_STATIC);
	b |= sqlite3_bind_int64(st, 5, revision);
	if (text)
		b |= sqlite3_bind_blob(st, 6, text, (int)len, SQLITE_STATIC);
	else
		b |= sqlite3_bind_null(st, 6);
	if (b) {
		rc = db_err(&le, t->s->wdb, "cannot write apply digest");
		done(st);
		return poison(t, rc, &le, e);
	}
	rc = run(t->s->wdb, st, "cannot write apply digest", &le);
	return rc ? poison(t, rc, &le, e) : 0;
}

/* Whether statement k (bound with collection as ?1 unless NULL) has a
 * row; what reads "cannot read apply digests" otherwise. */
static int any_row(struct store_txn *t, enum wst k, const char *collection,
		   bool *any, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	*any = false;
	rc = wstmt(t->s, k, &st, e);
	if (rc)
		return rc;
	if (collection && bind_text(st, 1, collection))
		goto dberr;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*any = sqlite3_column_type(st, 0) != SQLITE_INTEGER ||
		       sqlite3_column_int64(st, 0) != 0;
	else if (r != SQLITE_DONE)
		goto dberr;
	done(st);
	return 0;
dberr:
	rc = db_err(e, t->s->wdb, "cannot read apply digests");
	done(st);
	return rc;
}

int store_txn_digest_any(struct store_txn *t, const char *collection,
			 bool *any, struct err *e)
{
	*any = false;
	if (!t || !collection)
		return err_set(e, ERR_INTERNAL, "store_txn_digest_any: bad call");
	return any_row(t, W_DIG_ANY, collection, any, e);
}

int store_txn_text_any(struct store_txn *t, bool *any, struct err *e)
{
	*any = false;
	if (!t)
		return err_set(e, ERR_INTERNAL, "store_txn_text_any: bad call");
	return any_row(t, W_TEXT_ANY, NULL, any, e);
}

int store_txn_text_find(struct store_txn *t, const void *digest, size_t len,
			const struct collection **coll,
			char id_out[ID_LEN + 1], char **name, struct err *e)
{
	sqlite3_stmt *st = NULL;
	const char *cname, *n;
	int rc, r;

	*coll = NULL;
	*name = NULL;
	id_out[0] = '\0';
	if (!t || !digest || !len)
		return err_set(e, ERR_INTERNAL, "store_txn_text_find: bad call");
	rc = wstmt(t->s, W_TEXT_FIND, &st, e);
	if (rc)
		return rc;
	if (sqlite3_bind_blob(st, 1, digest, (int)len, SQLITE_STATIC) !=
	    SQLITE_OK)
		goto dberr;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		cname = (const char *)sqlite3_column_text(st, 0);
		n = (const char *)sqlite3_column_text(st, 2);
		*coll = cname ? schema_find(t->s->schema, cname) : NULL;
		if (*coll && n) {
			copy_col(id_out, ID_LEN + 1, st, 1);
			*name = strdup(n);
			if (!*name) {
				done(st);
				*coll = NULL;
				return err_set(e, ERR_NOMEM, "out of memory");
			}
		} else {
			*coll = NULL;
		}
	} else if (r != SQLITE_DONE) {
		goto dberr;
	}
	done(st);
	return 0;
dberr:
	rc = db_err(e, t->s->wdb, "cannot read apply digest");
	done(st);
	return rc;
}

int store_txn_text_put(struct store_txn *t, const char *collection,
		       const char *id, const void *digest, size_t len,
		       struct err *e)
{
	struct err le = ERR_INIT;
	sqlite3_stmt *st;
	int rc;

	if (!t || !collection || !id || !digest || !len)
		return err_set(e, ERR_INTERNAL, "store_txn_text_put: bad call");
	rc = wstmt(t->s, W_TEXT_PUT, &st, e);
	if (rc)
		return rc;
	if (bind_text(st, 1, collection) || bind_text(st, 2, id) ||
	    sqlite3_bind_blob(st, 3, digest, (int)len, SQLITE_STATIC) !=
		    SQLITE_OK) {
		rc = db_err(&le, t->s->wdb, "cannot write apply digest");
		done(st);
		return poison(t, rc, &le, e);
	}
	rc = run(t->s->wdb, st, "cannot write apply digest", &le);
	return rc ? poison(t, rc, &le, e) : 0;
}

int store_txn_renames(struct store_txn *t, int64_t *out, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = 0;
	if (!t)
		return err_set(e, ERR_INTERNAL, "store_txn_renames: bad call");
	rc = wstmt(t->s, W_RENAMES, &st, e);
	if (rc)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_err(e, t->s->wdb, "cannot read the store");
		done(st);
		return rc;
	}
	*out = sqlite3_column_int64(st, 0);
	done(st);
	return 0;
}
