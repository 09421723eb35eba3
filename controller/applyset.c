/*
 * applyset.c - apply sets on the store's record sets (see applyset.h). The
 * store keeps the membership and drops deleted records from it; what a set
 * means - the records one apply declared, kept or pruned by the next - is
 * apply's.
 */
#include "applyset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int applyset_get(struct store_txn *t, const char *name, json_t **members,
		 struct err *e)
{
	return store_txn_recset_get(t, name, members, e);
}

int applyset_put(struct store_txn *t, const char *name, const json_t *members,
		 struct err *e)
{
	if (!name || !*name)
		return err_set(e, ERR_INVALID, "apply set needs a name");
	/* the store checks the members' shape */
	return store_txn_recset_put(t, name, members, e);
}

bool applyset_has(const json_t *set, const char *collection, const char *id)
{
	const json_t *m;
	size_t i;

	json_array_foreach(set, i, m) {
		if (!strcmp(json_string_value(json_object_get(m, "collection")),
			    collection) &&
		    !strcmp(json_string_value(json_object_get(m, "id")), id))
			return true;
	}
	return false;
}

int applyset_keep_earlier(struct store_txn *t, json_t *prev,
			  json_t *members, struct err *e)
{
	json_t *pm;
	size_t i;

	json_array_foreach(prev, i, pm) {
		const char *pc = json_string_value(json_object_get(pm, "collection"));
		const char *pid = json_string_value(json_object_get(pm, "id"));
		struct record r;
		int gone;

		if (applyset_has(members, pc, pid))
			continue;
		record_init(&r);
		gone = store_txn_get(t, pc, pid, &r, NULL);
		record_release(&r);
		/* json_array_append shares pm with prev */
		if (!gone && json_array_append(members, pm))
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	return 0;
}

void applyset_name_for_dir(const char *dir, char *out, size_t n)
{
	char *real = realpath(dir, NULL);
	const char *p = real ? real : dir;
	size_t len = strlen(p);
	const char *base;

	while (len > 1 && p[len - 1] == '/')
		len--;
	base = p + len;
	while (base > p && base[-1] != '/')
		base--;
	snprintf(out, n, "%.*s", (int)(p + len - base), base);
	if (!*out)
		snprintf(out, n, "%s", "manifests");
	free(real);
}
