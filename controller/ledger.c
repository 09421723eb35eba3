/*
 * ledger.c - sealing approved proposals into the sops hash chain, and
 * verifying it (see ledger.h for the encoding and the guarantees).
 *
 * Everything that writes runs inside the caller's store transaction, so
 * it reads with the transaction's own view (store_txn_get / _count): a
 * sealing committed by an earlier transaction of the same group-commit
 * batch is seen, which the read pool would not guarantee. Finding the
 * ledger head and a name's latest version uses counts over the unique
 * (name, version) index and the id order, never a scan of the chain.
 */
#include "ledger.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define SOPS "sops"
#define PROPOSALS "proposals"
#define SEALED_BY_LABEL "pocketcoder.io/sealed-by"

static const char *jdstr(json_t *data, const char *f)
{
	const char *s = json_string_value(json_object_get(data, f));

	return s ? s : "";
}

static const char *dstr(const struct record *r, const char *field)
{
	return jdstr(r ? r->data : NULL, field);
}

/* ---- actors ---------------------------------------------------------------- */

int ledger_actor_resolve(struct store_txn *t, const char *actor_id,
			 struct ledger_actor *out, struct err *e)
{
	struct record r;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!actor_id) {
		out->server = out->admin = true;
		snprintf(out->label, sizeof(out->label), "server");
		return 0;
	}
	if (!util_valid_id(actor_id))
		return err_set(e, ERR_FORBIDDEN, "unknown actor '%.40s'",
			       actor_id);
	record_init(&r);
	rc = store_txn_get(t, "users", actor_id, &r, e);
	if (!rc) {
		memcpy(out->user_id, r.id, sizeof(out->user_id));
		out->admin = !strcmp(dstr(&r, "role"), "admin");
		snprintf(out->label, sizeof(out->label), "users/%s", r.id);
		record_release(&r);
		return 0;
	}
	if (rc != ERR_NOT_FOUND)
		return rc;
	rc = store_txn_get(t, "_superusers", actor_id, &r, e);
	if (!rc) {
		out->superuser = out->admin = true;
		snprintf(out->label, sizeof(out->label), "_superusers/%s",
			 r.id);
		record_release(&r);
		return 0;
	}
	if (rc != ERR_NOT_FOUND)
		return rc;
	err_clear(e);
	return err_set(e, ERR_FORBIDDEN, "unknown actor '%s'", actor_id);
}

/* ---- names, ids, signatures ------------------------------------------------- */

bool ledger_name_ok(const char *name)
{
	size_t i;

	if (!name || !*name || name[0] == '-')
		return false;
	for (i = 0; name[i]; i++) {
		if (i >= LEDGER_NAME_MAX)
			return false;
		if (name[i] == '-') {
			if (name[i + 1] == '-' || name[i + 1] == '\0')
				return false;
			continue;
		}
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9')))
			return false;
	}
	return true;
}

void ledger_entry_id(int64_t seq, char out[ID_LEN + 1])
{
	if (seq < 0)
		seq = 0;
	if (seq > LEDGER_SEQ_MAX)
		seq = LEDGER_SEQ_MAX;
	snprintf(out, ID_LEN + 1, LEDGER_ID_PREFIX "%012" PRId64, seq);
}

/* The sequence number of a ledger entry id, or -1 for any other id. */
static int64_t entry_seq(const char *id)
{
	int64_t v = 0;
	size_t i, p = strlen(LEDGER_ID_PREFIX);

	if (strlen(id) != ID_LEN || strncmp(id, LEDGER_ID_PREFIX, p))
		return -1;
	for (i = p; i < ID_LEN; i++) {
		if (id[i] < '0' || id[i] > '9')
			return -1;
		v = v * 10 + (id[i] - '0');
	}
	return v >= 1 ? v : -1;
}

static int digest_field(EVP_MD_CTX *md, const char *s)
{
	unsigned char len[8];
	uint64_t n = s ? strlen(s) : 0;
	int i;

	for (i = 7; i >= 0; i--) {
		len[i] = (unsigned char)(n & 0xff);
		n >>= 8;
	}
	if (EVP_DigestUpdate(md, len, sizeof(len)) != 1)
		return -1;
	if (s && *s && EVP_DigestUpdate(md, s, strlen(s)) != 1)
		return -1;
	return 0;
}

int ledger_signature(const char *name, const char *description,
		     const char *content, int64_t version,
		     const char *prev_hash, char out[LEDGER_HASH_HEX + 1],
		     struct err *e)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hn = 0, i;
	char vbuf[32];
	EVP_MD_CTX *md;
	int ok;

	out[0] = '\0';
	snprintf(vbuf, sizeof(vbuf), "%" PRId64, version);
	md = EVP_MD_CTX_new();
	if (!md)
		return err_set(e, ERR_INTERNAL, "sha-256: cannot allocate a "
			       "digest context");
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	     !digest_field(md, LEDGER_TAG) && !digest_field(md, name) &&
	     !digest_field(md, description) && !digest_field(md, content) &&
	     !digest_field(md, vbuf) && !digest_field(md, prev_hash) &&
	     EVP_DigestFinal_ex(md, h, &hn) == 1 && hn == 32;
	EVP_MD_CTX_free(md);
	if (!ok)
		return err_set(e, ERR_INTERNAL, "sha-256 failed");
	for (i = 0; i < hn; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[2 * hn] = '\0';
	return 0;
}

/* ---- finding the head and the latest version ---------------------------------- */

/* The first sop of a one-row walk: its id and data (a new reference). */
struct newest {
	char id[ID_LEN + 1];
	json_t *data;              /* NULL: no sop matched */
};

static int keep_first(const struct record *r, void *arg)
{
	struct newest *n = arg;

	memcpy(n->id, r->id, sizeof(n->id));
	n->data = json_incref(r->data);
	return 0;
}

/* The first sop that matches where (stolen; NULL: out of memory) in
 * descending order of key, as the transaction sees it; n->data stays NULL
 * when none does. Release with json_decref(n->data). */
static int newest_sop(struct store_txn *t, struct query_pred *where,
		      enum query_sort_kind kind, const char *key,
		      struct newest *n, struct err *e)
{
	struct query_sort order = { 0 };
	struct store_query q;
	int rc;

	memset(n, 0, sizeof(*n));
	if (!where)
		return err_set(e, ERR_NOMEM, "out of memory");
	query_sort_add(&order, kind, key, false, true);
	memset(&q, 0, sizeof(q));
	q.where = where;
	q.order = &order;
	q.limit = 1;
	rc = store_txn_list(t, SOPS, &q, keep_first, n, e);
	query_pred_free(where);
	return rc;
}

/* The ledger's head: the entry with the highest sequence number (ids are
 * fixed-width, so the highest id). n->data NULL when the ledger is
 * empty. */
static int ledger_head(struct store_txn *t, struct newest *n, struct err *e)
{
	char lo[ID_LEN + 1], hi[ID_LEN + 1];

	ledger_entry_id(1, lo);
	ledger_entry_id(LEDGER_SEQ_MAX, hi);
	return newest_sop(t, query_and(query_cmp(QUERY_GTE, query_column("id"),
						 query_literal(json_string(lo))),
				       query_cmp(QUERY_LTE, query_column("id"),
						 query_literal(json_string(hi)))),
			  QUERY_SORT_COLUMN, "id", n, e);
}

/* The highest version sealed for name (n->data NULL when none). */
static int latest_version(struct store_txn *t, const char *name,
			  struct newest *n, struct err *e)
{
	return newest_sop(t, query_cmp(QUERY_EQ, query_field("name", false),
				       query_literal(json_string(name))),
			  QUERY_SORT_FIELD, "version", n, e);
}

/* ---- sealing ------------------------------------------------------------------ */

static int check_sealable(const struct record *p, struct err *e)
{
	const char *name = dstr(p, "name");
	size_t dlen = strlen(dstr(p, "description"));

	if (!ledger_name_ok(name))
		return err_set_field(e, ERR_INVALID, "name",
				     "proposal '%.80s' cannot be approved: its "
				     "name must be a skill name (1-%d characters "
				     "of a-z and 0-9 in groups joined by single "
				     "'-')", name, LEDGER_NAME_MAX);
	if (!dlen || dlen > LEDGER_DESCRIPTION_MAX)
		return err_set_field(e, ERR_INVALID, "description",
				     "proposal '%s' cannot be approved: its "
				     "description must be 1-%d bytes (it is "
				     "%zu)", name, LEDGER_DESCRIPTION_MAX, dlen);
	return 0;
}

static int seal(struct store_txn *t, const struct record *p,
		const struct ledger_actor *who, struct err *e)
{
	const char *name = dstr(p, "name");
	const char *desc = dstr(p, "description");
	const char *content = dstr(p, "content");
	char id[ID_LEN + 1], sig[LEDGER_HASH_HEX + 1], now[TIME_LEN + 1];
	char rname[LEDGER_NAME_MAX + 32];
	struct newest latest, head = { "", NULL };
	struct store_put put;
	json_t *data = NULL, *labels = NULL;
	int64_t seq = 0, version = 0;
	const char *prev = "";
	int rc;

	rc = latest_version(t, name, &latest, e);
	if (rc)
		goto out;
	if (latest.data) {
		version = json_integer_value(json_object_get(latest.data,
							     "version"));
		/* Re-approving what is already sealed seals nothing. */
		if (!strcmp(jdstr(latest.data, "description"), desc) &&
		    !strcmp(jdstr(latest.data, "content"), content))
			goto out;
	}
	rc = ledger_head(t, &head, e);
	if (rc)
		goto out;
	if (head.data) {
		seq = entry_seq(head.id);
		prev = jdstr(head.data, "signature");
		if (seq < 1) {
			rc = err_set(e, ERR_CONFLICT, "the sop ledger's head "
				     "'%s' is not a ledger entry (see `pocketctl "
				     "ledger verify`)", head.id);
			goto out;
		}
	}
	if (seq >= LEDGER_SEQ_MAX) {
		rc = err_set(e, ERR_TOO_LARGE, "the sop ledger is full");
		goto out;
	}
	version++;
	rc = ledger_signature(name, desc, content, version, prev, sig, e);
	if (rc)
		goto out;
	util_now(now);
	ledger_entry_id(seq + 1, id);
	snprintf(rname, sizeof(rname), "%s@%" PRId64, name, version);
	/* json_pack copies every string. */
	data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}",
			 "name", name, "description", desc, "content", content,
			 "signature", sig, "approved_at", now, "proposal", p->id,
			 "sealed_at", now, "sealed_by", who->user_id, "version",
			 (json_int_t)version, "prev_hash", prev);
	labels = json_pack("{s:s}", SEALED_BY_LABEL, who->label);
	if (!data || !labels) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	memset(&put, 0, sizeof(put));
	put.collection = SOPS;
	put.id = id;
	put.name = rname;
	put.data = data;
	put.labels = labels;
	put.mode = STORE_CREATE;
	rc = store_txn_put(t, &put, NULL, NULL, e);
	if (rc)
		err_prefix(e, "sealing proposal '%s': ", name);
out:
	json_decref(latest.data);
	json_decref(head.data);
	json_decref(data);
	json_decref(labels);
	return rc;
}

int ledger_on_proposal_write(struct store_txn *t, const struct record *before,
			     struct record *after, const char *actor_id,
			     struct err *e)
{
	static const char *const sealed_fields[] = { "name", "description",
						     "content" };
	struct ledger_actor who;
	bool was, now;
	size_t i;
	int rc;

	if (!after || strcmp(after->collection, PROPOSALS))
		return 0;
	was = before && !strcmp(dstr(before, "status"), "approved");
	now = !strcmp(dstr(after, "status"), "approved");
	if (!now)
		return 0;
	if (was) {
		for (i = 0; i < sizeof(sealed_fields) / sizeof(*sealed_fields);
		     i++)
			if (strcmp(dstr(before, sealed_fields[i]),
				   dstr(after, sealed_fields[i])))
				/* back to draft; *after refreshed */
				return store_txn_patch(t, after, json_pack(
					"{s:s}", "status", "draft"), e);
		return 0;
	}
	rc = ledger_actor_resolve(t, actor_id, &who, e);
	if (rc)
		return rc;
	if (!who.admin)
		return err_set_field(e, ERR_FORBIDDEN, "status",
				     "only an admin can approve proposal '%s'",
				     dstr(after, "name"));
	rc = check_sealable(after, e);
	if (rc)
		return rc;
	return seal(t, after, &who, e);
}

/* ---- verification --------------------------------------------------------------- */

struct verify {
	int64_t pos;              /* entries seen */
	int64_t total;            /* entries in the ledger */
	char prev[256];           /* signature of the previous entry */
	json_t *versions;         /* name -> last version seen */
	json_t *bad;              /* the first bad entry, or NULL */
	struct err *e;
	int rc;                   /* an error other than "bad entry" */
};

static int mark_bad(struct verify *v, const char *id, json_t *data,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int mark_bad(struct verify *v, const char *id, json_t *data,
		    const char *fmt, ...)
{
	json_t *version = json_object_get(data, "version");
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* "O" shares version, or the null singleton */
	v->bad = json_pack("{s:s, s:O, s:s, s:I, s:s}", "name",
			   jdstr(data, "name"), "version",
			   version ? version : json_null(), "id", id,
			   "position", (json_int_t)v->pos, "reason", reason);
	if (!v->bad)
		v->rc = err_set(v->e, ERR_NOMEM, "out of memory");
	return 1;   /* stop the walk */
}

/* One entry, in ledger order: 0 to go on, 1 to stop (bad entry or error). */
static int verify_step(struct verify *v, const char *id, json_t *data)
{
	json_t *jv = json_object_get(data, "version");
	json_t *jsig = json_object_get(data, "signature");
	json_t *jprev = json_object_get(data, "prev_hash");
	json_t *last;
	const char *name = jdstr(data, "name");
	char want_id[ID_LEN + 1], sig[LEDGER_HASH_HEX + 1];
	int64_t seq, version, want_version;
	int rc;

	v->pos++;
	seq = entry_seq(id);
	ledger_entry_id(v->pos, want_id);
	if (seq < 0)
		return mark_bad(v, id, data, "not a ledger entry: id '%s' was "
				"not assigned by sealing", id);
	if (seq != v->pos)
		return mark_bad(v, id, data, "entries %" PRId64 " to %" PRId64
				" are missing before this one (expected id "
				"'%s')", v->pos, seq - 1, want_id);
	if (!json_is_integer(jv) || json_integer_value(jv) < 1)
		return mark_bad(v, id, data, "version is not a positive "
				"integer");
	if (!json_is_string(jsig) || !json_is_string(jprev) ||
	    !json_is_string(json_object_get(data, "name")) ||
	    !json_is_string(json_object_get(data, "content")))
		return mark_bad(v, id, data, "a sealed field is missing or not "
				"a string");
	if (strcmp(json_string_value(jprev), v->prev))
		return mark_bad(v, id, data, "prev_hash does not match the "
				"signature of the previous entry");
	version = json_integer_value(jv);
	last = json_object_get(v->versions, name);
	want_version = last ? json_integer_value(last) + 1 : 1;
	if (version != want_version)
		return mark_bad(v, id, data, "version %" PRId64 " of '%s' does "
				"not follow version %" PRId64, version, name,
				want_version - 1);
	rc = ledger_signature(name, jdstr(data, "description"),
			      jdstr(data, "content"), version, v->prev, sig,
			      v->e);
	if (rc) {
		v->rc = rc;
		return 1;
	}
	if (strcmp(sig, json_string_value(jsig)))
		return mark_bad(v, id, data, "signature does not match the "
				"sealed name, description, content, version "
				"and prev_hash");
	if (json_object_set_new(v->versions, name, json_integer(version))) {
		v->rc = err_set(v->e, ERR_NOMEM, "out of memory");
		return 1;
	}
	snprintf(v->prev, sizeof(v->prev), "%s", json_string_value(jsig));
	return 0;
}

static int verify_record(const struct record *r, void *arg)
{
	return verify_step(arg, r->id, r->data);
}

/* The report of a finished walk (v->bad is stolen). */
static int verify_report(struct verify *v, json_t **out, struct err *e)
{
	/* "o" steals v->bad (or a fresh null). */
	*out = json_pack("{s:b, s:I, s:I, s:s?, s:o}", "ok", !v->bad,
			 "entries", (json_int_t)v->total, "verified",
			 (json_int_t)(v->bad ? v->pos - 1 : v->pos), "head",
			 !v->bad && v->pos ? v->prev : NULL, "firstBad",
			 v->bad ? v->bad : json_null());
	v->bad = NULL;
	if (!*out)
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

int ledger_verify(struct store *s, json_t **out, struct err *e)
{
	struct query_sort by_id = { 0 };
	struct store_query q;
	struct verify v;
	int rc;

	*out = NULL;
	memset(&v, 0, sizeof(v));
	v.e = e;
	v.versions = json_object();
	if (!v.versions)
		return err_set(e, ERR_NOMEM, "out of memory");
	query_sort_add(&by_id, QUERY_SORT_COLUMN, "id", false, false);
	memset(&q, 0, sizeof(q));
	q.order = &by_id;
	rc = store_count(s, SOPS, &q, &v.total, e);
	if (!rc) {
		rc = store_list(s, SOPS, &q, verify_record, &v, e);
		if (rc == 1)
			rc = v.rc;
	}
	if (!rc)
		rc = verify_report(&v, out, e);
	json_decref(v.bad);
	json_decref(v.versions);
	return rc;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a,
							"id")),
		      json_string_value(json_object_get(*(json_t *const *)b,
							"id")));
}

int ledger_verify_records(json_t *sops, json_t **out, json_t **trusted,
			  struct err *e)
{
	struct verify v;
	json_t **sorted = NULL, *rec;
	size_t i, n;
	int rc = 0;

	*out = NULL;
	if (trusted)
		*trusted = NULL;
	if (!json_is_array(sops))
		return err_set(e, ERR_INVALID, "sops: expected an array");
	memset(&v, 0, sizeof(v));
	v.e = e;
	n = json_array_size(sops);
	v.versions = json_object();
	sorted = n ? calloc(n, sizeof(*sorted)) : NULL;
	if (!v.versions || (n && !sorted)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(sops, i, rec) {
		if (!json_is_string(json_object_get(rec, "id")) ||
		    !json_is_object(json_object_get(rec, "data"))) {
			rc = err_set(e, ERR_INVALID, "sops: element %zu is not "
				     "a record with an id and data", i);
			goto out;
		}
		sorted[i] = rec;
	}
	if (n > 1)
		qsort(sorted, n, sizeof(*sorted), cmp_id);
	v.total = (int64_t)n;
	for (i = 0; i < n; i++)
		if (verify_step(&v, json_string_value(json_object_get(sorted[i],
								      "id")),
				json_object_get(sorted[i], "data")))
			break;
	rc = v.rc;
	if (!rc && trusted) {
		*trusted = json_array();
		for (i = 0; *trusted && i < n && i < (size_t)(v.bad ? v.pos - 1 :
								  v.pos); i++)
			/* json_array_append shares the record. */
			if (json_array_append(*trusted, sorted[i])) {
				json_decref(*trusted);
				*trusted = NULL;
			}
		if (!*trusted)
			rc = err_set(e, ERR_NOMEM, "out of memory");
	}
	if (!rc)
		rc = verify_report(&v, out, e);
	if (rc && trusted) {
		json_decref(*trusted);
		*trusted = NULL;
	}
out:
	free(sorted);
	json_decref(v.bad);
	json_decref(v.versions);
	return rc;
}
