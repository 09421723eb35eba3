/*
 * secrets.h - schema-marked secret fields masked in every output.
 *
 * What the CLI and the declarative API print (get, diff, watch, apply
 * replies) shows a secret field as "***hmac:XXXXXXXX": eight hex digits of
 * an HMAC-SHA256 keyed with the installation secret (DATA_DIR/secret.key),
 * so a changed secret shows as a changed hash, while the hash of a short
 * secret cannot be brute-forced by someone who has only the output. The
 * same value in the same field of the same collection masks the same way
 * offline and through the server, since both read the same key file.
 */
#ifndef POCKETCTL_SECRETS_H
#define POCKETCTL_SECRETS_H

#include <stdbool.h>

#include <jansson.h>

#include "auth.h"
#include "err.h"
#include "store/schema.h"

#define SECRETS_MASK_PREFIX "***hmac:"
#define SECRETS_MASK_HEX 8          /* hex digits of the HMAC shown */

/*
 * Replace, in fields (an object of field name -> value: a record's "data"
 * or a manifest's "spec"), the value of each field c marks secret with its
 * mask. Absent and null values are left as they are (there is nothing to
 * hide, and "unset" stays visible). fields may be NULL or not an object:
 * then nothing happens. Values are replaced with json_object_set_new, so a
 * value shared with another object (a json_copy) is not changed in that
 * object. Returns 0, or ERR_NOMEM / ERR_INTERNAL (HMAC failure) with e
 * set, after which fields may be partly masked and must not be printed.
 */
int secrets_mask(const struct auth_keys *k, const struct collection *c,
		 json_t *fields, struct err *e);

/*
 * secrets_mask() on doc's "data" (a record, record_to_public_json()) and
 * on its "spec" (a manifest document, apply_record_manifest()); doc may be
 * NULL. Same returns as secrets_mask().
 */
int secrets_mask_doc(const struct auth_keys *k, const struct collection *c,
		     json_t *doc, struct err *e);

/*
 * Mask an apply or diff result (apply.h): for each of its "items" whose
 * "collection" s knows, secrets_mask_doc() on the item and on its "live"
 * and "desired" documents, so both sides of a diff mask alike and a
 * changed secret shows as a changed hash. Same returns as secrets_mask().
 */
int secrets_mask_result(const struct auth_keys *k, const struct schema *s,
			json_t *result, struct err *e);

/*
 * Write the mask of value (any JSON; serialised compactly with sorted keys,
 * so equal values mask equally) for field of collection into out, NUL
 * terminated. Returns 0, or ERR_NOMEM / ERR_INTERNAL with e set.
 */
int secrets_mask_value(const struct auth_keys *k, const char *collection,
		       const char *field, const json_t *value,
		       char out[sizeof(SECRETS_MASK_PREFIX) + SECRETS_MASK_HEX],
		       struct err *e);

/* Does fields (a manifest's spec) hold a mask in a secret field of c? */
bool secrets_has_mask(const struct collection *c, const json_t *fields);

/*
 * A mask applied back (get -o yaml|json | apply -f -) means "unchanged":
 * replace, in fields (record data from a manifest), each secret field of c
 * whose value is a mask with a copy of its value in stored (the stored
 * record's data; NULL when there is none) when that value masks to the
 * same string. A mask that does not match, or has no stored value to
 * match (or no key k to check with: k NULL), is ERR_INVALID with e->field
 * naming the field: it is never stored as the literal mask. Returns 0, or
 * that / ERR_NOMEM / ERR_INTERNAL; fields may be partly replaced then.
 */
int secrets_unmask(const struct auth_keys *k, const struct collection *c,
		   json_t *fields, const json_t *stored, struct err *e);

#endif
