/*
 * store_seal.c - secret fields encrypted at rest. Every value of a field
 * the schema marks secret is stored, in the records table and in the
 * change log alike, as "enc:v1:" + base64(nonce | ciphertext | tag):
 * AES-256-GCM through OpenSSL EVP over the value's compact JSON, a random
 * 96-bit nonce per value, and collection, record id and field name as
 * additional data, so a value moved to another record or field does not
 * open. The key is HKDF-SHA256 of a 32-byte key file - the installation
 * secret DIR/secret.key (auth.h), with its own label apart from its
 * token-signing uses, or the file store_options.key_file names so that it
 * can live apart from the database. Someone with only pocket.db* learns
 * no secret. At open, plaintext secret values left by an older version
 * are sealed in place (records and change log) and the file vacuumed, so
 * freed pages keep no plaintext.
 */
#include "store_int.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "auth.h"

#define SEAL_TAG "enc:v1:"
#define SEAL_NONCE 12
#define SEAL_MAC 16
#define SEAL_INFO "pocketctl-seal-v1"
#define SEAL_MAX ((size_t)16 << 20)     /* one sealed value's plaintext */

static bool has_secrets(const struct collection *c)
{
	size_t i;

	for (i = 0; c && i < c->nfields; i++)
		if (c->fields[i].secret)
			return true;
	return false;
}

static bool is_sealed(const json_t *v)
{
	const char *t = json_string_value(v);

	return t && !strncmp(t, SEAL_TAG, sizeof(SEAL_TAG) - 1);
}

/* The additional data: collection, id and field, NUL separated. */
static int aad(EVP_CIPHER_CTX *x, const char *coll, const char *id,
	       const char *field)
{
	int n;

	return EVP_CipherUpdate(x, NULL, &n, (const unsigned char *)coll,
				(int)strlen(coll) + 1) &&
	       EVP_CipherUpdate(x, NULL, &n, (const unsigned char *)id,
				(int)strlen(id) + 1) &&
	       EVP_CipherUpdate(x, NULL, &n, (const unsigned char *)field,
				(int)strlen(field) + 1);
}

/* Seal value into a new "enc:v1:..." string. NULL on failure. */
static json_t *seal_value(const struct store *s, const char *coll,
			  const char *id, const char *field, const json_t *v)
{
	EVP_CIPHER_CTX *x = NULL;
	unsigned char *raw = NULL;
	char *text = NULL, *b64 = NULL;
	json_t *out = NULL;
	size_t len, rawlen;
	int n = 0, m = 0;

	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	len = text ? strlen(text) : 0;
	if (!text || len > SEAL_MAX)
		goto out;
	rawlen = SEAL_NONCE + len + SEAL_MAC;
	raw = malloc(rawlen);
	b64 = malloc(sizeof(SEAL_TAG) + 4 * ((rawlen + 2) / 3) + 1);
	x = EVP_CIPHER_CTX_new();
	if (!raw || !b64 || !x || RAND_bytes(raw, SEAL_NONCE) != 1 ||
	    !EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, s->seal_key, raw) ||
	    !aad(x, coll, id, field) ||
	    !EVP_EncryptUpdate(x, raw + SEAL_NONCE, &n,
			       (const unsigned char *)text, (int)len) ||
	    !EVP_EncryptFinal_ex(x, raw + SEAL_NONCE + n, &m) ||
	    (size_t)(n + m) != len ||
	    !EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, SEAL_MAC,
				 raw + SEAL_NONCE + len))
		goto out;
	memcpy(b64, SEAL_TAG, sizeof(SEAL_TAG) - 1);
	EVP_EncodeBlock((unsigned char *)b64 + sizeof(SEAL_TAG) - 1, raw,
			(int)rawlen);
	out = json_string(b64);
out:
	EVP_CIPHER_CTX_free(x);
	if (text) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	free(raw);
	free(b64);
	return out;
}

/* Open a sealed string into its JSON value. NULL when it does not open
 * (a wrong key, another record's value, a damaged one). */
static json_t *open_value(const struct store *s, const char *coll,
			  const char *id, const char *field, const char *t)
{
	EVP_CIPHER_CTX *x = NULL;
	unsigned char *raw = NULL, *plain = NULL;
	const char *b = t + sizeof(SEAL_TAG) - 1;
	size_t blen = strlen(b), pad = 0;
	json_t *out = NULL;
	int rawlen, n = 0, m = 0;

	if (blen % 4 || blen / 4 * 3 > SEAL_MAX + SEAL_NONCE + SEAL_MAC)
		return NULL;
	pad = blen && b[blen - 1] == '=' ? (blen > 1 && b[blen - 2] == '=' ? 2 : 1) : 0;
	raw = malloc(blen / 4 * 3 + 1);
	if (!raw)
		goto out;
	rawlen = EVP_DecodeBlock(raw, (const unsigned char *)b, (int)blen);
	if (rawlen < 0)
		goto out;
	rawlen -= (int)pad;
	if (rawlen < SEAL_NONCE + SEAL_MAC)
		goto out;
	plain = malloc((size_t)rawlen);
	x = EVP_CIPHER_CTX_new();
	if (!plain || !x ||
	    !EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, s->seal_key, raw) ||
	    !aad(x, coll, id, field) ||
	    !EVP_DecryptUpdate(x, plain, &n, raw + SEAL_NONCE,
			       rawlen - SEAL_NONCE - SEAL_MAC) ||
	    !EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, SEAL_MAC,
				 raw + rawlen - SEAL_MAC) ||
	    EVP_DecryptFinal_ex(x, plain + n, &m) <= 0)
		goto out;
	out = json_loadb((const char *)plain, (size_t)(n + m),
			 JSON_DECODE_ANY, NULL);
out:
	EVP_CIPHER_CTX_free(x);
	if (plain) {
		OPENSSL_cleanse(plain, (size_t)(n + m));
		free(plain);
	}
	free(raw);
	return out;
}

json_t *seal_data(struct store *s, const char *coll, const char *id,
		  json_t *data, struct err *e)
{
	const struct collection *c = schema_find(s->schema, coll);
	json_t *out, *v, *sealed;
	size_t i;

	if (!has_secrets(c) || !json_is_object(data))
		return json_incref(data);
	out = json_copy(data);   /* shallow: members are replaced, not changed */
	if (!out) {
		nomem(e);
		return NULL;
	}
	for (i = 0; i < c->nfields; i++) {
		const char *f = c->fields[i].name;

		if (!c->fields[i].secret)
			continue;
		v = json_object_get(out, f);
		if (!v || json_is_null(v) || is_sealed(v))
			continue;
		sealed = seal_value(s, coll, id, f, v);
		if (!sealed || json_object_set_new(out, f, sealed)) {
			json_decref(out);
			err_set(e, ERR_INTERNAL, "cannot encrypt field '%s' of "
				"record '%s' of %s", f, id, coll);
			return NULL;
		}
	}
	return out;
}

int unseal_data(struct store *s, const char *coll, const char *id,
		json_t *data, struct err *e)
{
	const struct collection *c = schema_find(s->schema, coll);
	json_t *v, *plain;
	size_t i;

	if (!has_secrets(c) || !json_is_object(data))
		return 0;
	for (i = 0; i < c->nfields; i++) {
		const char *f = c->fields[i].name;

		if (!c->fields[i].secret)
			continue;
		v = json_object_get(data, f);
		if (!is_sealed(v))
			continue;   /* plaintext of an older version, or null */
		plain = open_value(s, coll, id, f, json_string_value(v));
		if (!plain)
			return err_set(e, ERR_DB, "field '%s' of record '%s' of "
				       "%s does not decrypt with the key "
				       "'%s'", f, id, coll, s->seal_path);
		if (json_object_set_new(data, f, plain))
			return nomem(e);
	}
	return 0;
}

int unseal_record(struct store *s, struct record *r, struct err *e)
{
	return unseal_data(s, r->collection, r->id, r->data, e);
}

int unseal_row_text(struct store *s, const struct collection *c,
		    const char *id, const char *text, size_t len, char **out,
		    struct err *e)
{
	json_t *data;
	int rc;

	*out = NULL;
	if (!has_secrets(c) || !memmem(text, len, SEAL_TAG, sizeof(SEAL_TAG) - 1))
		return 0;
	data = json_loadb(text, len, 0, NULL);
	if (!data)
		return err_set(e, ERR_DB, "record '%s' of %s is corrupt in "
			       "the database", id, c->name);
	rc = unseal_data(s, c->name, id, data, e);
	if (!rc) {
		*out = json_dumps(data, JSON_COMPACT);
		if (!*out)
			rc = nomem(e);
	}
	json_decref(data);
	return rc;
}

/* ---- the key, and the migration at open --------------------------------- */

/* HKDF-SHA256 of the installation secret into s->seal_key. */
static int derive_key(struct store *s, const struct auth_keys *k,
		      struct err *e)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	EVP_KDF_CTX *x = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM p[4];
	int ok;

	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						(char *)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 (void *)k->secret,
						 sizeof(k->secret));
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
						 (void *)SEAL_INFO,
						 sizeof(SEAL_INFO) - 1);
	p[3] = OSSL_PARAM_construct_end();
	ok = x && EVP_KDF_derive(x, s->seal_key, sizeof(s->seal_key), p) > 0;
	EVP_KDF_CTX_free(x);
	EVP_KDF_free(kdf);
	return ok ? 0 : err_set(e, ERR_INTERNAL, "cannot derive the "
				"encryption key from '%s'", s->seal_path);
}

/*
 * One sealed value of the store, or NULL when none; caller frees. Only the
 * collections with secret fields are read, each through the primary key's
 * (collection, id) range, so an open does not scan the whole store.
 */
static int first_sealed(struct store *s, sqlite3 *db, char **coll,
			char **id, char **text, struct err *e)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	int rc = 0, step = SQLITE_DONE;

	*coll = *id = *text = NULL;
	if (sqlite3_prepare_v2(db, "SELECT collection, id, data FROM records "
			       "WHERE collection = ?1 AND "
			       "instr(data, '\"" SEAL_TAG "') > 0 LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(e, db, "cannot read the records");
	for (i = 0; i < s->schema->ncollections && step == SQLITE_DONE; i++) {
		const struct collection *c = &s->schema->collections[i];

		if (!has_secrets(c))
			continue;
		sqlite3_reset(st);
		bind_text(st, 1, c->name);
		step = sqlite3_step(st);
	}
	if (step == SQLITE_ROW) {
		*coll = strdup((const char *)sqlite3_column_text(st, 0));
		*id = strdup((const char *)sqlite3_column_text(st, 1));
		*text = strdup((const char *)sqlite3_column_text(st, 2));
		if (!*coll || !*id || !*text)
			rc = nomem(e);
	} else if (step != SQLITE_DONE) {
		rc = db_err(e, db, "cannot read the records");
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * The meta key that says every secret value of the store is sealed: set
 * in the transaction of the migration, after which every write seals, so
 * later opens skip the scan of records and change log. (A binary from
 * before sealing that writes this store afterwards writes plaintext that
 * this marker hides; such a downgrade is not supported.)
 */
#define SEALED_KEY "secrets_sealed"

static int is_migrated(sqlite3 *db, bool *done, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int step;

	*done = false;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = '"
			       SEALED_KEY "'", -1, &st, NULL) != SQLITE_OK)
		return db_err(e, db, "cannot read the store's metadata");
	step = sqlite3_step(st);
	*done = step == SQLITE_ROW && sqlite3_column_int64(st, 0) == 1;
	sqlite3_finalize(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return db_err(e, db, "cannot read the store's metadata");
	return 0;
}

/* The key opens the store's sealed values (tries the first one found). */
static int check_key(struct store *s, sqlite3 *db, struct err *e)
{
	char *coll, *id, *text, *plain = NULL;
	const struct collection *c;
	int rc = first_sealed(s, db, &coll, &id, &text, e);

	if (!rc && text) {
		c = schema_find(s->schema, coll);
		rc = c ? unseal_row_text(s, c, id, text, strlen(text), &plain, e) : 0;
		if (rc)
			rc = err_set(e, ERR_FORBIDDEN, "the key file '%s' does "
				     "not decrypt the secrets in '%s' (a wrong "
				     "or replaced key file?); refusing to open",
				     s->seal_path, s->path);
	}
	if (plain) {
		OPENSSL_cleanse(plain, strlen(plain));
		free(plain);
	}
	free(coll);
	free(id);
	free(text);
	return rc;
}

/*
 * Seal the plaintext secret values of one table: records (data column)
 * or changelog (the record JSON's data). *n counts the rows rewritten.
 */
static int migrate_table(struct store *s, bool log, int *n, struct err *e)
{
	const char *sel = log ?
		"SELECT revision, collection, id, record FROM changelog "
		"WHERE collection = ?1" :
		"SELECT id, collection, id, data FROM records "
		"WHERE collection = ?1";
	const char *upd = log ?
		"UPDATE changelog SET record = ?2 WHERE revision = ?1" :
		"UPDATE records SET data = ?2 WHERE collection = ?3 "
		"AND id = ?1";
	sqlite3_stmt *st = NULL, *up = NULL;
	json_t *doc = NULL, *data, *sealed = NULL;
	size_t i;
	int rc = 0, step = SQLITE_DONE;

	if (sqlite3_prepare_v2(s->wdb, sel, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->wdb, upd, -1, &up, NULL) != SQLITE_OK) {
		rc = db_err(e, s->wdb, "cannot migrate the secret fields");
		goto out;
	}
	for (i = 0; !rc && i < s->schema->ncollections; i++) {
		const struct collection *c = &s->schema->collections[i];

		if (!has_secrets(c))
			continue;
		sqlite3_reset(st);
		bind_text(st, 1, c->name);
		while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(st, 2);
			const char *t = (const char *)sqlite3_column_text(st, 3);

			doc = t ? json_loads(t, 0, NULL) : NULL;
			data = log ? json_object_get(doc, "data") : doc;
			if (!id || !json_is_object(data)) {
				json_decref(doc);
				doc = NULL;
				continue;   /* nothing to seal (a delete's row) */
			}
			sealed = seal_data(s, c->name, id, data, e);
			if (!sealed) {
				rc = e->code;
				break;
			}
			if (!json_equal(sealed, data)) {
				int b = 0;

				if (log && json_object_set(doc, "data", sealed))
					b = SQLITE_NOMEM;
				sqlite3_reset(up);
				b |= log ? sqlite3_bind_int64(up, 1, sqlite3_column_int64(st, 0)) :
					   sqlite3_bind_text(up, 1, id, -1, SQLITE_TRANSIENT);
				b |= bind_json(up, 2, log ? doc : sealed);
				if (!log)
					b |= bind_text(up, 3, c->name);
				rc = b ? db_err(e, s->wdb, "cannot migrate the secret fields") :
					 run(s->wdb, up, "cannot migrate the secret fields", e);
				(*n)++;
			}
			json_decref(sealed);
			json_decref(doc);
			sealed = doc = NULL;
		}
		if (!rc && step != SQLITE_DONE)
			rc = db_err(e, s->wdb, "cannot migrate the secret fields");
	}
out:
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	return rc;
}

int seal_open(struct store *s, const char *key_file, struct err *e)
{
	struct auth_keys k;
	struct rconn *rc_conn = NULL;
	sqlite3 *db = s->wdb;
	bool migrated = false;
	int n = 0, rc;

	int n_path = key_file ?
		snprintf(s->seal_path, sizeof(s->seal_path), "%s", key_file) :
		snprintf(s->seal_path, sizeof(s->seal_path), "%s/%s", s->dir,
			 AUTH_SECRET_FILE);

	if (n_path < 0 || n_path >= (int)sizeof(s->seal_path))
		return err_set(e, ERR_INVALID, "key file path '%s' is too long",
			       key_file ? key_file : s->dir);
	if (s->read_only) {
		rc = rconn_get(s, &rc_conn, e);
		if (rc)
			return rc;
		db = rc_conn->db;
	}
	if (access(s->seal_path, F_OK) != 0) {
		char *coll, *id, *text;

		rc = first_sealed(s, db, &coll, &id, &text, e);
		if (!rc && text)
			rc = err_set(e, ERR_FORBIDDEN, "the key file '%s' is "
				     "missing, and '%s' holds secrets "
				     "encrypted with it; restore it (nothing "
				     "was changed)", s->seal_path, s->path);
		free(coll);
		free(id);
		free(text);
		if (rc)
			goto out;
	}
	rc = auth_keys_load_or_create_file(s->seal_path, &k, e);
	if (!rc)
		rc = derive_key(s, &k, e);
	auth_keys_wipe(&k);
	if (!rc)
		rc = check_key(s, db, e);
	if (!rc && !s->read_only)
		rc = is_migrated(s->wdb, &migrated, e);
	if (rc || s->read_only || migrated)
		goto out;
	rc = exec(s->wdb, "BEGIN IMMEDIATE", e);
	if (!rc)
		rc = migrate_table(s, false, &n, e);
	if (!rc)
		rc = migrate_table(s, true, &n, e);
	if (!rc)
		rc = exec(s->wdb, "INSERT OR REPLACE INTO meta (key, value) "
			  "VALUES ('" SEALED_KEY "', 1)", e);
	if (!rc)
		rc = exec(s->wdb, "COMMIT", e);
	if (rc) {
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	/* The plaintext is still in freed pages and in the WAL: rebuild the
	 * file and empty the WAL. */
	if (n)
		rc = exec(s->wdb, "VACUUM; PRAGMA wal_checkpoint(TRUNCATE)", e);
out:
	if (rc_conn)
		rconn_put(s, rc_conn);
	return rc;
}

void seal_close(struct store *s)
{
	OPENSSL_cleanse(s->seal_key, sizeof(s->seal_key));
}
