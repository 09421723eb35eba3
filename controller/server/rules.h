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

#endif
