/*
 * seed.h - the accounts a fresh server needs, from the environment: a
 * superuser, and the human admin and the agent as `users` records (the
 * original's seed, reference §2 and §3.1), so that the app and the
 * interface bridge can sign in on a first `make run`.
 *
 *   POCKETCTL_ADMIN_EMAIL / POCKETCTL_ADMIN_PASSWORD  a _superusers record
 *   POCKETCTL_USER_EMAIL  / POCKETCTL_USER_PASSWORD   users, role "admin"
 *   POCKETCTL_AGENT_EMAIL / POCKETCTL_AGENT_PASSWORD  users, role "agent"
 *
 * The original's names, POCKETBASE_SUPERUSER_EMAIL / _PASSWORD,
 * POCKETBASE_ADMIN_EMAIL / _PASSWORD and AGENT_EMAIL / AGENT_PASSWORD, are
 * read when neither POCKETCTL_ variable of the pair is set.
 *
 * THREAD SAFETY NOTES: called once by the main thread at start-up, before
 * civetweb runs.
 */
#ifndef POCKETCTL_SEED_H
#define POCKETCTL_SEED_H

#include "err.h"
#include "server.h"

/*
 * Create each configured account that no record of its collection has the
 * email of (compared case-insensitively), its password bcrypt-hashed; the
 * users ones verified, with their role. A superuser that exists with
 * another password gets the variable's, with a fresh tokenKey, and a line
 * on stderr says so (PocketBase's `superuser upsert`). An existing users
 * record is never changed; when its password is not the variable's, or its
 * role is another, a WARNING line on stderr says so and names the
 * variable, and the server goes on with the stored account. Returns 0;
 * ERR_INVALID naming the variables when only one of a pair is set, or
 * naming the variable whose value the store or the password policy
 * refuses; other store errors.
 */
int seed_accounts(struct server *srv, struct err *e);

#endif
