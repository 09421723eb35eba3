/*
 * api_sshkeys.h - the terminal's key sync:
 *
 *   GET /api/pocketcoder/ssh_keys   api_sshkeys_list
 *
 * THREAD SAFETY NOTES: no state of its own; the handler may run on any
 * request thread at once.
 */
#ifndef POCKETCTL_API_SSHKEYS_H
#define POCKETCTL_API_SSHKEYS_H

#include "http.h"

/*
 * GET /api/pocketcoder/ssh_keys: the agent or an admin (a superuser
 * counts as one); 401 for guests, 403 for anyone else. 200 text/plain:
 * the public_key of every active, unexpired, well-formed key, of every
 * user, trimmed, sorted and de-duplicated, joined by "\n" with no final
 * newline (the original's format): exactly the lines of the rendered
 * authorized_keys, since both come from render_authorized_keys().
 */
int api_sshkeys_list(struct http_req *r);

#endif
