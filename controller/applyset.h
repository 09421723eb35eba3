/*
 * applyset.h - apply sets: the records the last apply of a named set
 * declared, so that a later apply of the same set with prune can delete
 * the ones it no longer declares (kubectl's ApplySet, kept in the store).
 *
 * An apply set is the store's record set of the same name (store.h,
 * store_txn_recset_*), so data directories written before the store knew
 * record sets read as they are; a deleted record leaves its sets. Both
 * calls run inside the apply's transaction t.
 */
#ifndef POCKETCTL_APPLYSET_H
#define POCKETCTL_APPLYSET_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"
#include "store/store.h"

/*
 * The members ({collection, id} objects) recorded by the last apply of set
 * name; an unknown set gives an empty array. Caller owns *members
 * (json_decref); NULL on error.
 */
int applyset_get(struct store_txn *t, const char *name, json_t **members,
		 struct err *e);

/*
 * Record members (borrowed; {collection, id} objects) as set name's,
 * replacing the earlier ones. ERR_INVALID for an empty name, members that
 * are not an array, or a member without string collection and id; on
 * error t can only be aborted.
 */
int applyset_put(struct store_txn *t, const char *name, const json_t *members,
		 struct err *e);

/* True when set (an array of {collection, id}) holds that record. */
bool applyset_has(const json_t *set, const char *collection, const char *id);

/*
 * An apply without prune keeps the earlier members: append to members
 * each one of prev (borrowed) that it does not hold and whose record still
 * exists in t. ERR_NOMEM when out of memory.
 */
int applyset_keep_earlier(struct store_txn *t, json_t *prev,
			  json_t *members, struct err *e);

/*
 * The apply set a watched manifests directory applies as (serve
 * --manifests DIR --watch without --applyset): the last component of
 * DIR's real path ("manifests" for ./manifests/), into out (size n);
 * DIR as given when it cannot be resolved.
 */
void applyset_name_for_dir(const char *dir, char *out, size_t n);

#endif
