/*
 * observed.h - a record's status.observedGeneration, computed when the
 * record is read instead of written into it after every pass.
 *
 * Each reconciler's reconcile_status record says, in observedRevision,
 * that its last good pass saw every data change (of the collections in its
 * reads) up to that revision. The floor of a collection is the smallest
 * observedRevision of the reconcilers that read it. The rule:
 *
 *   - a collection no reconciler reads has no observedGeneration;
 *   - a record whose revision is <= the floor, or whose data has not
 *     changed since the floor (only its status did), is observed:
 *     observedGeneration = generation;
 *   - otherwise its last data change is still pending:
 *     observedGeneration = generation - 1 (the key is left out for a
 *     record created after the floor).
 *
 * The read is cheap: a record older than the floor costs a comparison;
 * whether a newer one changed data or only status is one walk of the
 * change log after the floor, once per collection and struct observed
 * (without parsing records), and only when some record needs it.
 *
 * THREAD SAFETY NOTES: a struct observed belongs to one thread at a time.
 */
#ifndef POCKETCTL_OBSERVED_H
#define POCKETCTL_OBSERVED_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "store/store.h"

/* Rows of the change log after a floor walked at most; beyond, every
 * record newer than the floor reads as pending. */
#define OBSERVED_SCAN_MAX 50000

struct observed;

/* An empty table over store (borrowed; outlives it): no floors yet. NULL
 * when out of memory. Caller owns it (observed_free()). */
struct observed *observed_new(struct store *store);
void observed_free(struct observed *o);   /* accepts NULL */

/*
 * A reconciler that reads the collections reads (NULL-terminated; names
 * starting with '@' are not collections and are skipped) and has
 * observed every data change up to rev. Returns 0 or ERR_NOMEM.
 */
int observed_add(struct observed *o, const char *const *reads, int64_t rev,
		 struct err *e);

/*
 * observed_add() for every reconcile_status record of the store (its
 * data.reads and status.observedRevision, 0 when it never had a good
 * pass). Returns 0 or the store's error.
 */
int observed_load(struct observed *o, struct err *e);

/*
 * The observedGeneration of a record of collection with id, generation
 * and revision: 0 when none (no reconciler reads the collection, or a
 * record created after the floor). data_change says the record's last
 * change (at revision) is known to be a data change, which spares the
 * change log walk. Errors reading the change log read as pending.
 */
int64_t observed_generation(struct observed *o, const char *collection,
			    const char *id, int64_t generation,
			    int64_t revision, bool data_change);

/*
 * Set status.observedGeneration of rec (the record_to_json() form,
 * changed in place; its status object is replaced by a copy, so a status
 * shared with a struct record is never changed) by the rule above, or
 * delete it when there is none; a stale stored observedGenerations is
 * dropped. Returns 0 or ERR_NOMEM.
 */
int observed_set(struct observed *o, json_t *rec, bool data_change,
		 struct err *e);

#endif
