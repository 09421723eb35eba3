/*
 * sshkey.h - OpenSSH public keys: the one parser of a key line that both
 * the ssh_keys write hook and the authorized_keys renderer use, its
 * SHA-256 fingerprint as `ssh-keygen -l -E sha256` prints it, and the
 * write hook itself.
 *
 * A key line is "<type> <base64 blob>[ <comment>]": the type is ssh-*,
 * ecdsa-sha2-* or sk-* (letters, digits, '-', '.', '@'), the blob padded
 * base64 that decodes to an SSH string naming the same type first. No
 * authorized_keys options (command=, from=...), no line breaks, no control
 * characters.
 *
 * THREAD SAFETY NOTES: no state; every function may run on any thread.
 */
#ifndef POCKETCTL_SSHKEY_H
#define POCKETCTL_SSHKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* store/store.h: the hook's types, declared here so that the renderer
 * (reconcilers/, which may not see the store) can use the parser. */
struct record;
struct store_actor;
struct store_txn;

#define SSHKEY_TYPE_MAX 64
#define SSHKEY_LINE_MAX 16384       /* an RSA-16384 key is about 2.8 KiB */
/* "SHA256:" + 43 characters of unpadded base64 */
#define SSHKEY_FP_LEN (7 + 43)

struct sshkey {
	char type[SSHKEY_TYPE_MAX + 1];     /* "ssh-ed25519" */
	char fingerprint[SSHKEY_FP_LEN + 1];/* "SHA256:..." */
};

/* Move *p and shrink *n past surrounding white space (space, tab, CR,
 * LF): a pasted key often ends in a newline. */
void sshkey_trim(const char **p, size_t *n);

/*
 * Check the trimmed key line p[0..n) and, when out is not NULL, fill its
 * type and fingerprint. Returns NULL when the line is a usable key, else
 * why not, as a phrase to follow "public_key " ("contains a line break",
 * "has no valid base64 key blob of its type"); the phrase never quotes the
 * line. *nomem is set (and "" returned) when memory ran out.
 */
const char *sshkey_parse(const char *p, size_t n, struct sshkey *out,
			 int *nomem);

/* True when p[0..n) looks like a private key (PEM or OpenSSH "PRIVATE
 * KEY" armour, a PuTTY key file): a paste of the wrong file. */
bool sshkey_is_private(const char *p, size_t n);

/*
 * The ssh_keys write hook (store_write_hooks[] in governance.c): the
 * record's public_key must parse (ERR_INVALID naming public_key; a private
 * key is refused without quoting it, so nothing of it reaches the store,
 * the change log or the reply); a fingerprint the writer supplied must be
 * the key's (ERR_INVALID naming fingerprint); the fingerprint, and the
 * algorithm when empty, are then set from the key. An update that changes
 * the key but leaves the stored fingerprint (and algorithm) as they were
 * gets them recomputed.
 */
int sshkey_on_write(struct store_txn *t, const struct record *before,
		    struct record *after, const struct store_actor *actor,
		    struct err *e);

#endif
