/*
 * ledger.h - the tamper-evident SOP ledger: sealing an approved proposal
 * into a new sops version, and verifying the hash chain of every sealed
 * entry.
 *
 * The ledger is one chain over all sops, in sealing order. Entry k (1, 2,
 * ...) has the record id ledger_entry_id(k) ("sop" + 12 digits), so the
 * order is the id order and a deleted entry leaves a visible gap. Each
 * entry stores prev_hash, the signature of entry k-1 ("" for the first),
 * and signature = lowercase hex SHA-256 over this canonical encoding:
 *
 *     field("pocketctl-sop-ledger-v1")
 *     field(name) field(description) field(content)
 *     field(version as decimal ASCII, no sign, no leading zeros)
 *     field(prev_hash)
 *
 * where field(x) = the length of x as 8 bytes, big-endian, followed by
 * the bytes of x (UTF-8, no terminator). Length prefixes make the encoding
 * unambiguous (no separator can be forged inside a field), and chaining
 * through prev_hash makes any change to a sealed byte, an insertion, a
 * reordering or a deletion in the middle visible from that entry on.
 * Not covered: sealed_at, sealed_by, approved_at, proposal and labels
 * (metadata), and a truncated tail (verify reports the head signature so
 * that it can be pinned elsewhere).
 *
 * Sealing happens only inside the store transaction that moves a proposal
 * to status "approved" (ledger_on_proposal_write(), the store's write hook
 * for proposals through governance.c, whoever writes), by an admin, a
 * superuser or the server itself: the new version and the status change
 * commit together or not at all.
 *
 * THREAD SAFETY NOTES: no state of its own; the write functions run inside
 * the caller's store transaction (which serialises sealing), verification
 * reads committed state and may run on any thread.
 */
#ifndef POCKETCTL_LEDGER_H
#define POCKETCTL_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "store/store.h"
#include "util.h"

#define LEDGER_HASH_HEX 64              /* hex chars of a SHA-256 */
#define LEDGER_TAG "pocketctl-sop-ledger-v1"
#define LEDGER_ID_PREFIX "sop"
#define LEDGER_SEQ_MAX INT64_C(999999999999)
#define LEDGER_NAME_MAX 64              /* OpenCode's skill-name limit */
#define LEDGER_DESCRIPTION_MAX 1024     /* OpenCode's description limit */

/* Who performs a write, as far as governance cares. */
struct ledger_actor {
	bool server;                  /* no actor: the server itself */
	bool superuser;               /* a _superusers record */
	bool admin;                   /* may approve: server, superuser, or a
	                               * users record with role "admin" */
	char user_id[ID_LEN + 1];     /* the users record id, or "" (the
	                               * relations approved_by / sealed_by
	                               * can only name users) */
	char label[ID_LEN + 32];      /* "users/<id>", "_superusers/<id>" or
	                               * "server", for labels and messages */
};

/*
 * Resolve actor_id (NULL = the server itself) inside t: a users record
 * (role read from it) or a _superusers record. An id that is neither is
 * ERR_FORBIDDEN naming it; store errors are passed on.
 */
int ledger_actor_resolve(struct store_txn *t, const char *actor_id,
			 struct ledger_actor *out, struct err *e);

/* True when name is a valid OpenCode skill name, which is also a safe
 * single path component: 1..LEDGER_NAME_MAX chars of [a-z0-9] in groups
 * joined by single '-' (^[a-z0-9]+(-[a-z0-9]+)*$). */
bool ledger_name_ok(const char *name);

/* The record id of ledger entry seq (1..LEDGER_SEQ_MAX) into out. */
void ledger_entry_id(int64_t seq, char out[ID_LEN + 1]);

/*
 * The signature of one entry (see the top of this file) into out, as 64
 * lowercase hex digits and a NUL. NULL strings count as "". Returns 0 or
 * ERR_INTERNAL when OpenSSL fails.
 */
int ledger_signature(const char *name, const char *description,
		     const char *content, int64_t version,
		     const char *prev_hash, char out[LEDGER_HASH_HEX + 1],
		     struct err *e);

/*
 * The governance rule for a write of a proposals record, run by the store
 * for every put of a proposal (governance.c registers it as the write
 * hook) inside the writer's transaction t, after the record was put and
 * before commit. before is
 * the stored record (NULL on create), after the record as written;
 * actor_id the caller's auth record id (NULL = the server itself).
 * Records of other collections are ignored (returns 0).
 *
 *   - status changes to "approved" (including a create as approved): the
 *     actor must be an admin (else ERR_FORBIDDEN), the name a valid skill
 *     name (ERR_INVALID, field "name") and the description 1..1024 bytes
 *     (ERR_INVALID, field "description"); then a new sops version is
 *     sealed: version = the name's highest version + 1, prev_hash = the
 *     ledger head's signature, signature, proposal, approved_at =
 *     sealed_at = now, sealed_by = the users id of the actor ("" for a
 *     superuser or the server; the label "pocketcoder.io/sealed-by" names
 *     every actor). When the name's latest version already holds exactly
 *     this description and content, nothing is sealed twice.
 *   - an approved proposal whose name, description or content changed
 *     while it stays "approved" is put back to "draft" (it must be
 *     approved again; nothing is re-sealed). *after is then replaced by
 *     the record as it is now.
 *   - anything else: nothing.
 *
 * On error the caller must abort t.
 */
int ledger_on_proposal_write(struct store_txn *t, const struct record *before,
			     struct record *after, const char *actor_id,
			     struct err *e);

/*
 * Recompute the chain over every sops record (committed state) and report
 *   {"ok": bool, "entries": N, "verified": K, "head": "<signature>"|null,
 *    "firstBad": null | {"name", "version", "id", "position", "reason"}}
 * where firstBad is the first entry, in ledger order, that does not match:
 * an id not assigned by sealing or a gap in the sequence, a prev_hash that
 * is not the previous entry's signature, a version that does not follow
 * the name's previous one, a field of the wrong type, or a signature that
 * does not match the sealed fields. Caller owns *out. Returns 0 (also when
 * the ledger is broken: that is in the report), ERR_DB or ERR_NOMEM.
 */
int ledger_verify(struct store *s, json_t **out, struct err *e);

/*
 * The same verification over sops records in record_to_json() form (an
 * array, any order, borrowed), for a reconciler that must not trust an
 * entry the chain does not vouch for. *out receives the report above;
 * *trusted (nullable; caller owns) the records of the verified prefix of
 * the chain, in ledger order. Returns 0, ERR_INVALID (not an array of
 * records) or ERR_NOMEM.
 */
int ledger_verify_records(json_t *sops, json_t **out, json_t **trusted,
			  struct err *e);

#endif
