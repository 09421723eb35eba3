/*
 * actor.h - who wrote a change, as the change log names it (the actor
 * column, store_txn_set_writer()) and as each watcher may read it.
 *
 * Labels are "KIND:..." or "KIND/NAME" strings:
 *     superuser:EMAIL        a superuser through the API (the local CLI
 *                            token's own superuser included)
 *     user:ID:EMAIL          a users record through the API ("user:ID"
 *                            when it has no email)
 *     guest                  a caller without a token (a create rule)
 *     apply:WHO              an apply, WHO one of these (remote: the
 *                            caller; "cli:USER" offline; "server",
 *                            "reconciler/manifests")
 *     reconciler/NAME        a reconcile pass of NAME (its status and its
 *                            writes: cron fires, push outcomes, ...)
 *     cli:USER               an offline command, USER the OS user
 *     server                 the server itself (seeding, start-up)
 *
 * A superuser reads labels as written. Anyone else reads every identity
 * but their own reduced to its kind: "superuser", "user", "cli" (so
 * "apply:superuser:a@b" reads "apply:superuser"): a plain user never
 * learns another person's email or id through the change log.
 */
#ifndef POCKETCTL_ACTOR_H
#define POCKETCTL_ACTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "util.h"

/* The label of caller a (superuser:EMAIL, user:ID:EMAIL, guest) into out
 * (n bytes, cut to fit; NUL-terminated when n > 0). */
void actor_of_caller(const struct http_auth *a, char *out, size_t n);

/*
 * actor as a caller that is not a superuser reads it (see above), into out
 * (n bytes, cut to fit). Returns out.
 */
char *actor_public(const char *actor, char *out, size_t n);

/*
 * The users record id inside actor ("user:ID..." after any "apply:"
 * prefixes) into id (ID_LEN + 1 bytes; "" when actor names no user).
 * A watcher who is that user reads the label as written.
 */
void actor_user_id(const char *actor, char id[ID_LEN + 1]);

#endif
