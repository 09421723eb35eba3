/*
 * sshkey.c - OpenSSH public key lines (see sshkey.h): the parser shared by
 * the ssh_keys write hook and the authorized_keys renderer, the SHA-256
 * fingerprint (OpenSSL's EVP digest and base64), and the hook that keeps
 * every stored key parseable with its true fingerprint.
 */
#include "sshkey.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "store/store.h"

void sshkey_trim(const char **p, size_t *n)
{
	/* A NUL byte inside is caught later as a control character. */
	while (*n && (*p)[0] && strchr(" \t\r\n", (*p)[0])) {
		(*p)++;
		(*n)--;
	}
	while (*n && (*p)[*n - 1] && strchr(" \t\r\n", (*p)[*n - 1]))
		(*n)--;
}

static bool type_ok(const char *t, size_t n)
{
	size_t i;

	if (n == 0 || n > SSHKEY_TYPE_MAX)
		return false;
	if (!((n > 4 && !memcmp(t, "ssh-", 4)) ||
	      (n > 11 && !memcmp(t, "ecdsa-sha2-", 11)) ||
	      (n > 3 && !memcmp(t, "sk-", 3))))
		return false;
	for (i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
		      (t[i] >= '0' && t[i] <= '9') || t[i] == '-' ||
		      t[i] == '.' || t[i] == '@'))
			return false;
	return true;
}

/* "SHA256:" + unpadded base64 of the SHA-256 of raw[0..n). */
static bool fingerprint(const unsigned char *raw, size_t n,
			char out[SSHKEY_FP_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE], b64[64];
	unsigned int mdlen = 0;
	int len;

	if (!EVP_Digest(raw, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return false;
	len = EVP_EncodeBlock(b64, md, (int)mdlen);   /* 44, one '=' */
	while (len > 0 && b64[len - 1] == '=')
		len--;
	memcpy(out, "SHA256:", 7);
	memcpy(out + 7, b64, (size_t)len);
	out[7 + len] = '\0';
	return true;
}

/*
 * True when b64[0..n) is padded base64 whose decoded blob starts with the
 * SSH string type[0..tn) (uint32 length, then the name); fp (nullable)
 * receives the blob's fingerprint.
 */
static bool blob_ok(const char *b64, size_t n, const char *type, size_t tn,
		    char *fp, int *nomem)
{
	unsigned char *raw = NULL;
	size_t i, pad = 0;
	uint32_t len;
	int got;
	bool ok = false;

	*nomem = 0;
	if (n < 8 || n % 4)
		return false;
	for (i = 0; i < n; i++) {
		if (b64[i] == '=') {
			pad++;
			continue;
		}
		if (pad || !((b64[i] >= 'A' && b64[i] <= 'Z') ||
			     (b64[i] >= 'a' && b64[i] <= 'z') ||
			     (b64[i] >= '0' && b64[i] <= '9') || b64[i] == '+' ||
			     b64[i] == '/'))
			return false;
	}
	if (pad > 2)
		return false;
	raw = malloc(n / 4 * 3 + 1);
	if (!raw) {
		*nomem = 1;
		return false;
	}
	got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (got < 0 || (size_t)got < pad)
		goto out;
	got -= (int)pad;   /* EVP_DecodeBlock counts the padding as zeros */
	if (got < 4)
		goto out;
	len = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 |
	      (uint32_t)raw[2] << 8 | (uint32_t)raw[3];
	ok = len == tn && (size_t)got >= 4 + tn && !memcmp(raw + 4, type, tn);
	if (ok && fp)
		ok = fingerprint(raw, (size_t)got, fp);
out:
	free(raw);
	return ok;
}

const char *sshkey_parse(const char *p, size_t n, struct sshkey *out,
			 int *nomem)
{
	const char *sp, *b64, *end;
	size_t i, tn;

	*nomem = 0;
	if (n == 0)
		return "is empty";
	if (n > SSHKEY_LINE_MAX)
		return "is longer than 16384 bytes";
	for (i = 0; i < n; i++) {
		if (p[i] == '\n' || p[i] == '\r')
			return "contains a line break";
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return "contains a control character";
	}
	sp = memchr(p, ' ', n);
	tn = sp ? (size_t)(sp - p) : 0;
	if (!sp || !type_ok(p, tn))
		return "does not start with a key type (ssh-*, ecdsa-sha2-*, "
		       "sk-*); options are not accepted";
	for (b64 = sp; b64 < p + n && *b64 == ' '; b64++)
		;
	end = memchr(b64, ' ', (size_t)(p + n - b64));
	if (!end)
		end = p + n;
	if (!blob_ok(b64, (size_t)(end - b64), p, tn,
		     out ? out->fingerprint : NULL, nomem))
		return *nomem ? "" : "has no valid base64 key blob of its type";
	if (out) {
		memcpy(out->type, p, tn);
		out->type[tn] = '\0';
	}
	return NULL;
}

bool sshkey_is_private(const char *p, size_t n)
{
	static const char *const marks[] = {
		"PRIVATE KEY", "PuTTY-User-Key-File-", NULL
	};
	size_t i, k;

	for (i = 0; marks[i]; i++) {
		k = strlen(marks[i]);
		if (n >= k && memmem(p, n, marks[i], k))
			return true;
	}
	return false;
}

int sshkey_on_write(struct store_txn *t, const struct record *before,
		    struct record *after, const struct store_actor *actor,
		    struct err *e)
{
	json_t *pk = json_object_get(after->data, "public_key");
	const char *p = json_is_string(pk) ? json_string_value(pk) : "";
	size_t n = json_is_string(pk) ? json_string_length(pk) : 0;
	const char *why, *have, *alg, *was_fp, *was_alg;
	struct sshkey key;
	json_t *patch;
	bool new_key;
	int nomem;

	(void)actor;
	if (sshkey_is_private(p, n))
		return err_set_field(e, ERR_INVALID, "public_key",
				     "public_key holds a private key; paste "
				     "the public key (the .pub file) instead; "
				     "nothing was stored");
	sshkey_trim(&p, &n);
	why = sshkey_parse(p, n, &key, &nomem);
	if (nomem)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (why)
		return err_set_field(e, ERR_INVALID, "public_key",
				     "public_key %s", why);
	have = json_string_value(json_object_get(after->data, "fingerprint"));
	alg = json_string_value(json_object_get(after->data, "algorithm"));
	was_fp = before ? json_string_value(json_object_get(before->data,
							     "fingerprint")) :
		 NULL;
	was_alg = before ? json_string_value(json_object_get(before->data,
							      "algorithm")) :
		  NULL;
	new_key = before && !json_equal(json_object_get(before->data,
							"public_key"), pk);
	/* An update that changes the key and leaves the stored fingerprint
	 * (and algorithm) as they were gets them recomputed; one it supplies
	 * itself must match. */
	if (have && *have && strcmp(have, key.fingerprint) &&
	    !(new_key && was_fp && !strcmp(have, was_fp)))
		return err_set_field(e, ERR_INVALID, "fingerprint",
				     "fingerprint '%.80s' does not match the "
				     "key, whose fingerprint is %s", have,
				     key.fingerprint);
	if (new_key && alg && was_alg && !strcmp(alg, was_alg))
		alg = NULL;
	if (have && !strcmp(have, key.fingerprint) && alg && *alg)
		return 0;
	patch = json_pack("{s:s}", "fingerprint", key.fingerprint);
	if (patch && !(alg && *alg) &&
	    json_object_set_new(patch, "algorithm", json_string(key.type))) {
		json_decref(patch);
		patch = NULL;
	}
	return store_txn_patch(t, after, patch, e);   /* patch stolen */
}
