/*
 * pbjson.h - records in PocketBase's JSON shape, with field visibility
 * applied for the caller who will see them.
 */
#ifndef POCKETCTL_PBJSON_H
#define POCKETCTL_PBJSON_H

#include <jansson.h>

#include "http.h"
#include "store/schema.h"
#include "store/store.h"

/*
 * r as PocketBase returns it: "id", "collectionId", "collectionName",
 * "created", "updated", then every field of c in schema order. Never
 * included: hidden fields (password hashes, tokenKey). Secret fields
 * (llm_keys.env_vars, mcp_servers.config) only when viewer is an admin (a
 * superuser, or a users record with role "admin") or the record's owner
 * (c->owner_field equals viewer's id; for an auth collection, the record
 * itself). For auth collections "email" only to the record itself, an admin,
 * or when the record's emailVisibility is true. viewer may be NULL (a
 * guest). s is unused today and kept for relation-aware output (expand).
 * Caller owns the result (json_decref); NULL on allocation failure.
 */
json_t *pb_record_json(const struct schema *s, const struct collection *c,
		       const struct record *r, const struct http_auth *viewer);

/*
 * True when pb_record_json() gives every stored field of c's records to
 * every viewer: c is no auth collection and has no hidden, password or
 * secret field. Such a record's JSON is its stored row spliced
 * (pb_row_text()).
 */
bool pb_record_public(const struct collection *c);

/*
 * Append to out what pb_record_json() gives for the stored row of
 * c, for a c where pb_record_public() holds and a row whose data holds
 * only fields of c (store_data_clean()): the same keys, then the members
 * of the stored data text, copied, not parsed. Returns 0, ERR_NOMEM, or
 * ERR_DB (e set) when a column needs JSON escaping, which a row the store
 * wrote never does.
 */
int pb_row_text(struct buf *out, const struct collection *c,
		const struct store_row *row, struct err *e);

/* True when viewer is a superuser or a users record with role "admin"
 * (the same test as http_is_admin(), on a struct http_auth). */
bool pb_viewer_is_admin(const struct http_auth *viewer);

#endif
