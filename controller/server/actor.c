/*
 * actor.c - the change log's writer labels for API callers and how a
 * watcher who is not a superuser reads them (see actor.h).
 */
#include "actor.h"

#include <stdio.h>
#include <string.h>

#define APPLY_PREFIX "apply:"

void actor_of_caller(const struct http_auth *a, char *out, size_t n)
{
	const char *email = json_string_value(json_object_get(a->record,
							      "email"));

	if (a->kind == CALLER_SUPERUSER)
		snprintf(out, n, "superuser:%s", email && *email ? email :
			 a->id);
	else if (a->kind == CALLER_USER && email && *email)
		snprintf(out, n, "user:%s:%s", a->id, email);
	else if (a->kind == CALLER_USER)
		snprintf(out, n, "user:%s", a->id);
	else
		snprintf(out, n, "guest");
}

/* actor past its "apply:" prefixes; *skip receives their length. */
static const char *past_apply(const char *actor, size_t *skip)
{
	const char *p = actor;

	while (!strncmp(p, APPLY_PREFIX, strlen(APPLY_PREFIX)))
		p += strlen(APPLY_PREFIX);
	*skip = (size_t)(p - actor);
	return p;
}

char *actor_public(const char *actor, char *out, size_t n)
{
	static const char *const kinds[] = { "superuser", "user", "cli" };
	const char *who;
	size_t skip, i, k;

	who = past_apply(actor, &skip);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		k = strlen(kinds[i]);
		if (!strncmp(who, kinds[i], k) && who[k] == ':') {
			snprintf(out, n, "%.*s%s", (int)skip, actor, kinds[i]);
			return out;
		}
	}
	snprintf(out, n, "%s", actor);
	return out;
}

void actor_user_id(const char *actor, char id[ID_LEN + 1])
{
	const char *who;
	size_t skip, len;

	id[0] = '\0';
	who = past_apply(actor, &skip);
	if (strncmp(who, "user:", 5))
		return;
	who += 5;
	len = strcspn(who, ":");
	if (len == ID_LEN)
		snprintf(id, ID_LEN + 1, "%.*s", (int)len, who);
}
