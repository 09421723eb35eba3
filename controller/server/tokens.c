/*
 * tokens.c - the token cache (see tokens.h): AUTH_CACHE_SLOTS slots, each
 * one verified token with its record as the caller sees it, the tokenKey
 * it was verified with and the store_auth_seq() before that record was
 * read. A miss verifies the token (auth_token_verify(), reading the
 * claimed record) and fills the slot the token hashes to.
 */
#include "tokens.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "util.h"

#define SUPERUSERS "_superusers"
#define AUTH_CACHE_SLOTS 256

struct auth_slot {
	pthread_mutex_t lock;
	char *token;                  /* owned; NULL = empty slot */
	size_t token_len;
	int64_t exp;                  /* the token's expiry (unix s) */
	uint64_t aseq;                /* store_auth_seq() before the record
	                               * was read */
	char *token_key;              /* owned: what the token was verified
	                               * with */
	const struct collection *c;
	char id[ID_LEN + 1];
	json_t *record;               /* owned: as the caller sees it */
};

struct tokens {
	struct store *store;                 /* borrowed */
	const struct schema *schema;         /* borrowed */
	const struct auth_keys *keys;        /* borrowed */
	struct auth_slot slots[AUTH_CACHE_SLOTS];
};

struct tokens *tokens_new(struct store *st, const struct schema *s,
			  const struct auth_keys *keys)
{
	struct tokens *tc = calloc(1, sizeof(*tc));
	size_t i;

	if (!tc)
		return NULL;
	tc->store = st;
	tc->schema = s;
	tc->keys = keys;
	for (i = 0; i < AUTH_CACHE_SLOTS; i++)
		pthread_mutex_init(&tc->slots[i].lock, NULL);
	return tc;
}

static void slot_clear(struct auth_slot *sl)
{
	free(sl->token);
	free(sl->token_key);
	json_decref(sl->record);
	sl->token = NULL;
	sl->token_key = NULL;
	sl->record = NULL;
}

void tokens_free(struct tokens *tc)
{
	size_t i;

	if (!tc)
		return;
	for (i = 0; i < AUTH_CACHE_SLOTS; i++) {
		slot_clear(&tc->slots[i]);
		pthread_mutex_destroy(&tc->slots[i].lock);
	}
	free(tc);
}

/* FNV-1a picks the slot; the attacker-chosen token only picks which
 * slot its own comparison runs against. */
static size_t token_slot(const char *t)
{
	return util_hash(t, strlen(t), UTIL_HASH_INIT) % AUTH_CACHE_SLOTS;
}

/* The slot holds exactly token (compared in constant time for a given
 * length, so timing tells nothing about a cached token's bytes). */
static bool slot_has(const struct auth_slot *sl, const char *token,
		     size_t len)
{
	return sl->token && sl->token_len == len &&
	       CRYPTO_memcmp(sl->token, token, len) == 0;
}

/* The auth record as rules and handlers see it: its data without the
 * password hash or tokenKey, plus id, collectionId and collectionName.
 * Caller owns the result; NULL on allocation failure. */
static json_t *auth_record_view(const struct collection *c,
				const struct record *rec)
{
	json_t *v = json_deep_copy(rec->data);

	if (!v)
		return NULL;
	json_object_del(v, "password");
	json_object_del(v, "tokenKey");
	if (json_object_set_new(v, "id", json_string(rec->id)) ||
	    json_object_set_new(v, "collectionId", json_string(c->id)) ||
	    json_object_set_new(v, "collectionName", json_string(c->name))) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Fill *out; takes ownership of record. */
static void set_caller(struct http_auth *out, const struct collection *c,
		       const char *id, json_t *record)
{
	out->kind = strcmp(c->name, SUPERUSERS) == 0 ? CALLER_SUPERUSER :
						       CALLER_USER;
	snprintf(out->id, sizeof(out->id), "%s", id);
	snprintf(out->collection_id, sizeof(out->collection_id), "%s", c->id);
	out->record = record;
}

int tokens_caller_of(const struct collection *c, const struct record *rec,
		     struct http_auth *out, struct err *e)
{
	json_t *view = auth_record_view(c, rec);

	if (!view)
		return err_set(e, ERR_NOMEM, "out of memory");
	set_caller(out, c, rec->id, view);
	return 0;
}

/* Remember a verified token (best effort: nothing happens when memory
 * runs out). */
static void slot_store(struct auth_slot *sl, const char *token, size_t len,
		       int64_t exp, uint64_t aseq, const char *token_key,
		       const struct collection *c, const char *id,
		       const json_t *record)
{
	char *t = strdup(token), *tk = strdup(token_key);
	json_t *copy = json_deep_copy(record);

	if (!t || !tk || !copy) {
		free(t);
		free(tk);
		json_decref(copy);
		return;
	}
	pthread_mutex_lock(&sl->lock);
	slot_clear(sl);
	sl->token = t;
	sl->token_len = len;
	sl->exp = exp;
	sl->aseq = aseq;
	sl->token_key = tk;
	sl->c = c;
	snprintf(sl->id, sizeof(sl->id), "%s", id);
	sl->record = copy;
	pthread_mutex_unlock(&sl->lock);
}

/* auth_token_verify()'s lookup: read the claimed auth record, keep it for
 * the caller, hand back its tokenKey. */
struct token_lookup {
	struct tokens *tc;
	const struct collection *c;
	struct record rec;
};

static char *lookup_token_key(void *arg, const char *collection_id,
			      const char *record_id)
{
	struct token_lookup *l = arg;
	struct err e = ERR_INIT;
	const struct collection *c;
	const char *tk;

	c = schema_find_by_id(l->tc->schema, collection_id);
	if (!c || !c->auth || !util_valid_id(record_id))
		return NULL;
	record_release(&l->rec);
	if (store_get(l->tc->store, c->name, record_id, &l->rec, &e))
		return NULL;
	tk = json_string_value(json_object_get(l->rec.data, "tokenKey"));
	if (!tk || !*tk)
		return NULL;
	l->c = c;
	return strdup(tk);
}

/*
 * A cached token whose record may have changed: read the record again and
 * accept when its tokenKey is still token_key. Returns true when *out was
 * filled.
 */
static bool revalidate(struct tokens *tc, struct auth_slot *sl,
		       const char *token, size_t len, int64_t exp,
		       uint64_t aseq, const struct collection *c,
		       const char *id, const char *token_key,
		       struct http_auth *out)
{
	struct err e = ERR_INIT;
	struct record rec;
	const char *tk;
	json_t *view = NULL;
	bool ok = false;

	record_init(&rec);
	if (store_get(tc->store, c->name, id, &rec, &e))
		goto out;
	tk = json_string_value(json_object_get(rec.data, "tokenKey"));
	if (!tk || strcmp(tk, token_key) != 0)
		goto out;
	view = auth_record_view(c, &rec);
	if (!view)
		goto out;
	slot_store(sl, token, len, exp, aseq, token_key, c, id, view);
	set_caller(out, c, id, view);
	ok = true;
out:
	record_release(&rec);
	return ok;
}

int tokens_check(struct tokens *tc, const char *token, struct http_auth *out,
		 struct err *e)
{
	struct auth_slot *sl;
	struct token_lookup l;
	struct auth_claims claims;
	const struct collection *c = NULL;
	char id[ID_LEN + 1] = "", *tk = NULL;
	json_t *view = NULL;
	int64_t now = (int64_t)time(NULL), exp = 0;
	uint64_t aseq;
	size_t len;
	int rc = 0;

	len = strlen(token);
	/* Read before the record is: a write in between makes the entry
	 * stale at once instead of hiding it. */
	aseq = store_auth_seq(tc->store);
	sl = &tc->slots[token_slot(token)];

	pthread_mutex_lock(&sl->lock);
	if (slot_has(sl, token, len) && now < sl->exp) {
		if (sl->aseq == aseq) {
			view = json_deep_copy(sl->record);
			c = sl->c;
			snprintf(id, sizeof(id), "%s", sl->id);
		} else {
			c = sl->c;
			snprintf(id, sizeof(id), "%s", sl->id);
			exp = sl->exp;
			tk = strdup(sl->token_key);
		}
	}
	pthread_mutex_unlock(&sl->lock);
	if (view) {
		set_caller(out, c, id, view);
		return 0;
	}
	if (tk) {
		bool ok = revalidate(tc, sl, token, len, exp, aseq, c, id, tk,
				     out);

		free(tk);
		if (ok)
			return 0;
	}

	memset(&l, 0, sizeof(l));
	l.tc = tc;
	record_init(&l.rec);
	rc = auth_token_verify(tc->keys, token, now, lookup_token_key, &l,
			       &claims, e);
	if (rc)
		goto out;
	if (!l.c || strcmp(l.rec.id, claims.id) != 0) {
		rc = err_set(e, ERR_UNAUTHORIZED, "unknown auth record");
		goto out;
	}
	view = auth_record_view(l.c, &l.rec);
	if (!view) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	slot_store(sl, token, len, claims.exp, aseq,
		   json_string_value(json_object_get(l.rec.data, "tokenKey")),
		   l.c, l.rec.id, view);
	set_caller(out, l.c, l.rec.id, view);
out:
	record_release(&l.rec);
	return rc;
}
