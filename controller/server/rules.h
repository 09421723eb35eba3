/*
 * rules.h - a collection's access rules applied to one caller.
 *
 * Every collection carries one rule per action (list, view, create, update,
 * delete): NULL = superusers only, "" = anyone, otherwise a filter
 * expression (filter.h) that the record must satisfy for that caller. This
 * module turns a rule into a store query condition and answers "may
 * this caller see record X", which the records API, relation expansion and
 * realtime delivery all need. As in PocketBase, a superuser passes every
 * rule, and a record the caller may not see simply does not exist for it.
 */
#ifndef POCKETCTL_RULES_H
#define POCKETCTL_RULES_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"
#include "store/filter.h"
#include "store/schema.h"
#include "store/store.h"

/* PocketBase's message for an action whose rule is NULL. */
#define RULES_SUPERUSER_ONLY "Only superusers can perform this action."

/*
 * The condition (*out, a query.h tree; caller frees it with
 * query_pred_free()) under which the caller described by auth (NULL =
 * guest) may perform action a on a record of c. A superuser and an empty
 * rule give QUERY_TRUE.
 *
 * Returns 0; ERR_FORBIDDEN with message RULES_SUPERUSER_ONLY when the rule
 * is NULL and the caller is not a superuser; ERR_INTERNAL when the schema's
 * own rule does not compile (a schema bug, named in the message);
 * ERR_NOMEM. On error *out is NULL.
 */
int rules_where(const struct schema *s, const struct collection *c,
		enum rule_action a, const struct filter_auth *auth,
		struct query_pred **out, struct err *e);

/*
 * Fetch record id of c when action a's rule lets the caller at it, reading
 * committed state. Returns 0 with *out filled (caller releases it with
 * record_release()); ERR_NOT_FOUND when the record is absent or the rule
 * hides it (the two are indistinguishable on purpose); ERR_FORBIDDEN when
 * the rule is NULL and the caller is not a superuser; other codes from the
 * store. An id that is not a valid record id is ERR_NOT_FOUND without a
 * store lookup.
 */
int rules_get(struct store *st, const struct schema *s,
	      const struct collection *c, enum rule_action a, const char *id,
	      const struct filter_auth *auth, struct record *out,
	      struct err *e);

/*
 * The same check inside a write transaction, seeing its own uncommitted
 * writes: 1 when record id of c exists and satisfies action a's rule for
 * the caller, 0 when not, a negative ERR_* on error (ERR_FORBIDDEN for a
 * NULL rule and a non-superuser, as above).
 */
int rules_txn_check(struct store_txn *t, const struct schema *s,
		    const struct collection *c, enum rule_action a,
		    const char *id, const struct filter_auth *auth,
		    struct err *e);

/*
 * Whether f is an owner field of c: a relation field that one of c's rules
 * compares with @request.auth.id ("user = @request.auth.id"). Derived from
 * the rule text, so a new collection needs no list kept by hand. Owner
 * fields change only by a superuser (rules_check_write()).
 */
bool rules_owner_field(const struct collection *c, const struct field *f);

/* Whether any field of c is an owner field (rules_owner_field()). */
bool rules_has_owner(const struct collection *c);

/*
 * Whether some rule of schema s names @now, so that what it lets through
 * depends on the clock as well as on the store. Any rule counts, not only
 * a collection's own: a ?filter= or ?expand= that reaches another
 * collection runs that collection's view rule. The records API keeps no
 * reply of such a schema (api_records.c cached()).
 */
bool rules_read_clock(const struct schema *s);

/*
 * The checks a write by a non-superuser must pass beyond the action's own
 * rule, run inside write transaction t before the put: data holds the
 * fields the caller sets, old the stored data (NULL for a create), id the
 * record's id. Every relation field of data whose value is new must point
 * at a record of its target collection the caller may view (the target's
 * view rule); otherwise ERR_INVALID naming the field with the message a
 * missing record gets ("no users record with id '...'"), so the answer
 * never tells a hidden record from an absent one. On an update, a changed
 * owner field is ERR_FORBIDDEN naming the field. A superuser passes.
 *
 * Returns 0 when the write may go on, the codes above, or other codes
 * from the store. data and old are borrowed.
 */
int rules_check_write(struct store_txn *t, const struct schema *s,
		      const struct collection *c, const char *id,
		      const json_t *data, const json_t *old,
		      const struct filter_auth *auth, struct err *e);

#endif
