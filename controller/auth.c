/*
 * auth.c - bcrypt password hashes (libcrypt), the installation secret, and
 * PocketBase-compatible HS256 auth tokens (OpenSSL HMAC, jansson).
 *
 * Nothing cryptographic is written here: libcrypt does bcrypt, OpenSSL does
 * HMAC-SHA256, base64 and randomness, CRYPTO_memcmp does the constant-time
 * compares. This file only glues them into PocketBase's shapes and refuses
 * anything that is not exactly what we issue. See auth.h for the key
 * derivation.
 */
#include "auth.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "buf.h"
#include "util.h"

#define SHA256_LEN 32

/* The JWT header PocketBase sends (its base64url is "eyJhbGciOiJIUzI1NiIs..."). */
static const char jwt_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* ---- passwords ------------------------------------------------------- */

int auth_password_check(const char *pw, struct err *e)
{
	size_t bytes, chars = 0;
	const unsigned char *p;

	if (!pw || !*pw)
		return err_set_field(e, ERR_INVALID, "password",
				     "password must not be empty");
	bytes = strlen(pw);
	if (bytes > AUTH_PASSWORD_MAX)
		return err_set_field(e, ERR_INVALID, "password",
				     "password is %zu bytes long; at most %d "
				     "bytes are allowed", bytes,
				     AUTH_PASSWORD_MAX);
	/* Count UTF-8 code points: every byte that is not a continuation. */
	for (p = (const unsigned char *)pw; *p; p++)
		if ((*p & 0xC0) != 0x80)
			chars++;
	if (chars < AUTH_PASSWORD_MIN)
		return err_set_field(e, ERR_INVALID, "password",
				     "password must be at least %d characters "
				     "long", AUTH_PASSWORD_MIN);
	return 0;
}

/*
 * One bcrypt computation of pw under setting (a salt or a whole hash).
 * Returns a malloc'd copy of the result, or NULL when libcrypt refuses or
 * memory runs out. struct crypt_data is ~32 KiB, hence the heap.
 */
static char *bcrypt_run(const char *pw, const char *setting)
{
	struct crypt_data *data = NULL;
	const char *h;
	char *res = NULL;

	data = calloc(1, sizeof(*data));
	if (!data)
		goto out;
	h = crypt_rn(pw, setting, data, (int)sizeof(*data));
	/* libxcrypt returns NULL, or a string starting with '*' on failure. */
	if (!h || h[0] == '*')
		goto out;
	res = strdup(h);
out:
	if (data) {
		OPENSSL_cleanse(data, sizeof(*data));
		free(data);
	}
	return res;
}

int auth_password_hash(const char *pw, int cost, char *out, size_t n,
		       struct err *e)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	char *h = NULL;
	size_t len;
	int rc = 0;

	if (n > 0)
		out[0] = '\0';
	rc = auth_password_check(pw, e);
	if (rc)
		goto out;
	if (cost <= 0)
		cost = AUTH_BCRYPT_COST_DEFAULT;
	if (cost < AUTH_BCRYPT_COST_MIN || cost > AUTH_BCRYPT_COST_MAX) {
		rc = err_set_field(e, ERR_INVALID, "cost",
				   "bcrypt cost %d is outside %d..%d", cost,
				   AUTH_BCRYPT_COST_MIN, AUTH_BCRYPT_COST_MAX);
		goto out;
	}
	/* NULL random bytes: libcrypt reads the salt from the OS RNG. */
	if (!crypt_gensalt_rn("$2b$", (unsigned long)cost, NULL, 0, setting,
			      (int)sizeof(setting))) {
		rc = err_set(e, ERR_INTERNAL, "cannot make a bcrypt salt: %s",
			     strerror(errno));
		goto out;
	}
	h = bcrypt_run(pw, setting);
	if (!h) {
		rc = err_set(e, ERR_INTERNAL, "bcrypt hashing failed");
		goto out;
	}
	len = strlen(h);
	if (len + 1 > n) {
		rc = err_set(e, ERR_TOO_LARGE,
			     "password hash needs %zu bytes, buffer has %zu",
			     len + 1, n);
		goto out;
	}
	memcpy(out, h, len + 1);
out:
	free(h);
	return rc;
}

/* True for the bcrypt hash shape: "$2a$"/"$2b$"/"$2y$", 2-digit cost, '$',
 * 53 more characters (60 in all). */
static bool bcrypt_shaped(const char *hash)
{
	return strlen(hash) == 60 && hash[0] == '$' && hash[1] == '2' &&
	       (hash[2] == 'a' || hash[2] == 'b' || hash[2] == 'y') &&
	       hash[3] == '$' && hash[4] >= '0' && hash[4] <= '9' &&
	       hash[5] >= '0' && hash[5] <= '9' && hash[6] == '$';
}

bool auth_password_verify(const char *pw, const char *hash)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	char *h = NULL;
	bool ok = false;

	/* Reject impossible passwords first, whether or not the account
	 * exists, so that this early exit says nothing about it. */
	if (!pw || !*pw || strlen(pw) > AUTH_PASSWORD_MAX)
		return false;
	if (!hash) {
		/* Unknown account: spend the same time as a real check. */
		if (crypt_gensalt_rn("$2b$", AUTH_BCRYPT_COST_DEFAULT, NULL, 0,
				     setting, (int)sizeof(setting)))
			free(bcrypt_run(pw, setting));
		return false;
	}
	if (!bcrypt_shaped(hash))
		return false;
	h = bcrypt_run(pw, hash);
	ok = h && strlen(h) == 60 && CRYPTO_memcmp(h, hash, 60) == 0;
	free(h);
	return ok;
}

int auth_token_key_new(char out[AUTH_TOKEN_KEY_LEN + 1], struct err *e)
{
	static const char alnum[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[64];
	size_t got = 0, i;

	out[0] = '\0';
	while (got < AUTH_TOKEN_KEY_LEN) {
		if (RAND_bytes(rnd, (int)sizeof(rnd)) != 1)
			return err_set(e, ERR_INTERNAL,
				       "random number generator failed");
		/* Rejection sampling: 248 = 4 * 62, so no modulo bias. */
		for (i = 0; i < sizeof(rnd) && got < AUTH_TOKEN_KEY_LEN; i++)
			if (rnd[i] < 248)
				out[got++] = alnum[rnd[i] % 62];
	}
	out[got] = '\0';
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}

/* ---- the installation secret ----------------------------------------- */

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int read_full(int fd, unsigned char *p, size_t n)
{
	size_t off = 0;
	ssize_t r;

	while (off < n) {
		r = read(fd, p + off, n - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static int write_full(int fd, const unsigned char *p, size_t n)
{
	size_t off = 0;
	ssize_t r;

	while (off < n) {
		r = write(fd, p + off, n - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

/*
 * Read the secret at path into out. ERR_NOT_FOUND when the file does not
 * exist (the caller then creates it); any other refusal is final.
 */
static int secret_load(const char *path, struct auth_keys *out,
		       struct err *e)
{
	struct stat st;
	int fd = -1, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT) {
		rc = err_set(e, ERR_NOT_FOUND, "secret '%s' does not exist",
			     path);
		goto out;
	}
	if (fd < 0 && errno == ELOOP) {
		rc = err_set(e, ERR_INVALID,
			     "secret '%s' is a symbolic link; refusing it",
			     path);
		goto out;
	}
	if (fd < 0) {
		rc = err_set(e, ERR_IO, "cannot open secret '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = err_set(e, ERR_IO, "cannot stat secret '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = err_set(e, ERR_INVALID,
			     "secret '%s' is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = err_set(e, ERR_FORBIDDEN,
			     "secret '%s' is accessible by group or others "
			     "(mode %04o); run 'chmod 600 %s' and check who "
			     "may have read it", path,
			     (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size != AUTH_SECRET_LEN) {
		rc = err_set(e, ERR_INVALID,
			     "secret '%s' is %lld bytes, expected %d; delete it "
			     "to generate a new one (every issued token then "
			     "stops working)", path, (long long)st.st_size,
			     AUTH_SECRET_LEN);
		goto out;
	}
	if (read_full(fd, out->secret, AUTH_SECRET_LEN) < 0) {
		rc = err_set(e, ERR_IO, "cannot read secret '%s': %s", path,
			     errno ? strerror(errno) : "short read");
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * Create the secret at path: random bytes into a private O_EXCL temporary,
 * fsync, then link() it into place. link() fails with EEXIST if another
 * process got there first; that is fine, the caller loads whichever file
 * won. A crash leaves at most a stray temporary, never a short secret.
 */
static int secret_create(const char *data_dir, const char *path,
			 struct err *e)
{
	unsigned char key[AUTH_SECRET_LEN];
	char *tmp = NULL;
	size_t tlen = strlen(path) + 32;
	int fd = -1, rc = 0;

	rc = fs_mkdirs(data_dir, e);
	if (rc)
		goto out;
	tmp = malloc(tlen);
	if (!tmp) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
	/* The name carries our pid, so a leftover is from a dead process. */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		rc = err_set(e, ERR_IO, "cannot create '%s': %s", tmp,
			     strerror(errno));
		goto out;
	}
	if (RAND_bytes(key, (int)sizeof(key)) != 1) {
		rc = err_set(e, ERR_INTERNAL,
			     "random number generator failed");
		goto out;
	}
	if (write_full(fd, key, sizeof(key)) < 0 || fchmod(fd, 0600) < 0 ||
	    fsync(fd) < 0) {
		rc = err_set(e, ERR_IO, "cannot write '%s': %s", tmp,
			     strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = err_set(e, ERR_IO, "cannot close '%s': %s", tmp,
			     strerror(errno));
		goto out;
	}
	fd = -1;
	if (link(tmp, path) < 0 && errno != EEXIST) {
		rc = err_set(e, ERR_IO, "cannot create secret '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	if (fsync_dir(data_dir) < 0) {
		rc = err_set(e, ERR_IO, "cannot sync directory '%s': %s",
			     data_dir, strerror(errno));
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int auth_keys_load_or_create_file(const char *path, struct auth_keys *out,
				  struct err *e)
{
	char *dir = strdup(path);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!dir) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = secret_load(path, out, e);
	if (rc != ERR_NOT_FOUND)
		goto out;
	rc = secret_create(dirname(dir), path, e);
	if (rc)
		goto out;
	rc = secret_load(path, out, e);
out:
	if (rc)
		auth_keys_wipe(out);
	free(dir);
	return rc;
}

int auth_keys_load_or_create(const char *data_dir, struct auth_keys *out,
			     struct err *e)
{
	char *path = path_join(data_dir, AUTH_SECRET_FILE);
	int rc;

	if (!path) {
		memset(out, 0, sizeof(*out));
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	rc = auth_keys_load_or_create_file(path, out, e);
	free(path);
	return rc;
}

void auth_keys_wipe(struct auth_keys *k)
{
	if (k)
		OPENSSL_cleanse(k->secret, sizeof(k->secret));
}

int auth_write_private_file(const char *path, const void *data, size_t len,
			    struct err *e)
{
	return fs_write_atomic(path, data, len, 0600, e);
}

/* ---- base64url ------------------------------------------------------- */

/* Unpadded base64url of in[0..n) as a malloc'd string, or NULL on OOM. */
static char *b64url_encode(const unsigned char *in, size_t n)
{
	char *out;
	int len, i;

	if (n > (size_t)INT_MAX / 2)
		return NULL;
	out = malloc(4 * ((n + 2) / 3) + 1);
	if (!out)
		return NULL;
	len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (i = 0; i < len; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return out;
}

static bool b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * Decode unpadded base64url s[0..n) into a malloc'd, NUL-terminated *out of
 * *outlen bytes. Only the canonical encoding is accepted (no padding, no
 * stray bits in the last character), so every byte string has exactly one
 * accepted spelling. Returns 0, ERR_INVALID for bad input, ERR_NOMEM.
 */
static int b64url_decode(const char *s, size_t n, unsigned char **out,
			 size_t *outlen)
{
	char *tmp = NULL, *again = NULL;
	unsigned char *bin = NULL;
	size_t i, padded, pads;
	int r, rc = 0;

	*out = NULL;
	*outlen = 0;
	if (n == 0 || n % 4 == 1 || n > AUTH_TOKEN_MAX) {
		rc = ERR_INVALID;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!b64url_char(s[i])) {
			rc = ERR_INVALID;
			goto out;
		}
	}
	pads = (4 - n % 4) % 4;
	padded = n + pads;
	tmp = malloc(padded + 1);
	bin = malloc(padded / 4 * 3 + 1);
	if (!tmp || !bin) {
		rc = ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		tmp[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	for (; i < padded; i++)
		tmp[i] = '=';
	tmp[padded] = '\0';
	r = EVP_DecodeBlock(bin, (const unsigned char *)tmp, (int)padded);
	if (r < 0 || (size_t)r < pads) {
		rc = ERR_INVALID;
		goto out;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	*outlen = (size_t)r - pads;
	bin[*outlen] = '\0';
	again = b64url_encode(bin, *outlen);
	if (!again) {
		rc = ERR_NOMEM;
		goto out;
	}
	if (strlen(again) != n || memcmp(again, s, n) != 0) {
		rc = ERR_INVALID;
		goto out;
	}
	*out = bin;
	bin = NULL;
out:
	if (rc)
		*outlen = 0;
	free(tmp);
	free(bin);
	free(again);
	return rc;
}

/* ---- tokens ---------------------------------------------------------- */

/* Claim values we issue and accept: 1..AUTH_CLAIM_MAX-1 of [A-Za-z0-9_-]. */
static bool claim_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= AUTH_CLAIM_MAX - 1 || !b64url_char(s[n]))
			return false;
	return n > 0;
}

/*
 * Put s, quoted, into out when it is short and harmless to print; else a
 * placeholder. Token contents are attacker-chosen and end up in logs.
 */
static const char *printable(const char *s, char out[48])
{
	size_t i, n = strlen(s);

	if (n > 32)
		return "(too long to show)";
	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '\'')
			return "(unprintable)";
	snprintf(out, 48, "'%s'", s);
	return out;
}

/*
 * The signature of input[0..n): HMAC-SHA256 keyed with
 * HMAC-SHA256(secret, token_key). mac receives SHA256_LEN bytes.
 */
static int sign(const struct auth_keys *k, const char *token_key,
		const char *input, size_t n, unsigned char mac[SHA256_LEN],
		struct err *e)
{
	unsigned char key[SHA256_LEN];
	unsigned int klen = 0, mlen = 0;
	int rc = 0;

	if (!HMAC(EVP_sha256(), k->secret, AUTH_SECRET_LEN,
		  (const unsigned char *)token_key, strlen(token_key), key,
		  &klen) || klen != SHA256_LEN) {
		rc = err_set(e, ERR_INTERNAL, "cannot derive the token key");
		goto out;
	}
	if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)input,
		  n, mac, &mlen) || mlen != SHA256_LEN) {
		rc = err_set(e, ERR_INTERNAL, "cannot sign the token");
		goto out;
	}
out:
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int auth_token_issue(const struct auth_keys *k, const char *collection_id,
		     const char *record_id, const char *token_key,
		     int64_t ttl_seconds, int64_t now, char **out,
		     struct err *e)
{
	json_t *payload = NULL;
	char *pjson = NULL, *h64 = NULL, *p64 = NULL, *s64 = NULL;
	unsigned char mac[SHA256_LEN];
	struct buf b = BUF_INIT;
	int rc = 0;

	*out = NULL;
	if (!collection_id || !claim_ok(collection_id)) {
		rc = err_set_field(e, ERR_INVALID, "collectionId",
				   "collection id must be 1..%d characters "
				   "of [A-Za-z0-9_-]", AUTH_CLAIM_MAX - 1);
		goto out;
	}
	if (!record_id || !claim_ok(record_id)) {
		rc = err_set_field(e, ERR_INVALID, "id",
				   "record id must be 1..%d characters of "
				   "[A-Za-z0-9_-]", AUTH_CLAIM_MAX - 1);
		goto out;
	}
	if (!token_key || !*token_key) {
		rc = err_set_field(e, ERR_INVALID, "tokenKey",
				   "record '%s' has no tokenKey", record_id);
		goto out;
	}
	if (ttl_seconds == 0)
		ttl_seconds = AUTH_TOKEN_TTL_DEFAULT;
	if (ttl_seconds < 0 || now > INT64_MAX - ttl_seconds) {
		rc = err_set(e, ERR_INVALID,
			     "token lifetime %lld seconds is out of range",
			     (long long)ttl_seconds);
		goto out;
	}
	/* Borrowed strings are copied by json_pack; payload is ours. */
	payload = json_pack("{s:s, s:I, s:s, s:b, s:s}",
			    "collectionId", collection_id,
			    "exp", (json_int_t)(now + ttl_seconds),
			    "id", record_id,
			    "refreshable", 1,
			    "type", "auth");
	if (!payload) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	pjson = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
	h64 = b64url_encode((const unsigned char *)jwt_header,
			    strlen(jwt_header));
	p64 = pjson ? b64url_encode((const unsigned char *)pjson,
				    strlen(pjson)) : NULL;
	if (!pjson || !h64 || !p64) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = buf_printf(&b, "%s.%s", h64, p64);
	if (rc) {
		rc = err_set(e, rc, "out of memory");
		goto out;
	}
	rc = sign(k, token_key, b.ptr, b.len, mac, e);
	if (rc)
		goto out;
	s64 = b64url_encode(mac, sizeof(mac));
	if (!s64) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = buf_printf(&b, ".%s", s64);
	if (rc) {
		rc = err_set(e, rc, "out of memory");
		goto out;
	}
	*out = buf_detach(&b, NULL);
	if (!*out)
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	json_decref(payload);
	free(pjson);
	free(h64);
	free(p64);
	free(s64);
	buf_release(&b);
	return rc;
}

/* Decode one base64url JSON-object segment; messages name which one. */
static int decode_segment(const char *s, size_t n, const char *what,
			  json_t **out, struct err *e)
{
	unsigned char *raw = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = b64url_decode(s, n, &raw, &len);
	if (rc == ERR_NOMEM) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (rc) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: %s is not valid base64url",
			     what);
		goto out;
	}
	/* Duplicate keys are refused so no two readers can disagree. */
	*out = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES,
			  NULL);
	if (!*out) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: %s is not valid JSON", what);
		goto out;
	}
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: %s is not a JSON object", what);
		goto out;
	}
out:
	free(raw);
	return rc;
}

/* Copy string claim name of payload into dst (AUTH_CLAIM_MAX bytes). */
static int get_claim(json_t *payload, const char *name, bool strict_chars,
		     char dst[AUTH_CLAIM_MAX], struct err *e)
{
	json_t *v = json_object_get(payload, name); /* borrowed */
	const char *s;

	if (!json_is_string(v))
		return err_set(e, ERR_UNAUTHORIZED,
			       "malformed token: claim \"%s\" is missing or "
			       "not a string", name);
	s = json_string_value(v);
	if (strict_chars ? !claim_ok(s)
			 : (!*s || json_string_length(v) >= AUTH_CLAIM_MAX))
		return err_set(e, ERR_UNAUTHORIZED,
			       "malformed token: claim \"%s\" is not a valid "
			       "identifier", name);
	snprintf(dst, AUTH_CLAIM_MAX, "%s", s);
	return 0;
}

int auth_token_verify(const struct auth_keys *k, const char *token,
		      int64_t now, auth_token_key_fn lookup, void *arg,
		      struct auth_claims *out, struct err *e)
{
	const char *dot1 = NULL, *dot2 = NULL;
	json_t *header = NULL, *payload = NULL, *v;
	unsigned char *sig = NULL;
	unsigned char mac[SHA256_LEN];
	char *tkey = NULL;
	char q1[48], q2[48];
	struct auth_claims c;
	size_t n, slen = 0;
	int rc = 0;

	memset(&c, 0, sizeof(c));
	if (!token || !*token) {
		rc = err_set(e, ERR_UNAUTHORIZED, "missing auth token");
		goto out;
	}
	n = strnlen(token, AUTH_TOKEN_MAX + 1);
	if (n > AUTH_TOKEN_MAX) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: longer than %d bytes",
			     AUTH_TOKEN_MAX);
		goto out;
	}
	dot1 = strchr(token, '.');
	if (dot1)
		dot2 = strchr(dot1 + 1, '.');
	if (!dot2 || strchr(dot2 + 1, '.')) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: expected three dot-separated "
			     "parts");
		goto out;
	}

	rc = decode_segment(token, (size_t)(dot1 - token), "header", &header,
			    e);
	if (rc)
		goto out;
	v = json_object_get(header, "alg"); /* borrowed */
	if (!json_is_string(v)) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: header has no \"alg\" string");
		goto out;
	}
	if (strcmp(json_string_value(v), "HS256") != 0) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "token algorithm %s is not accepted (only HS256)",
			     printable(json_string_value(v), q1));
		goto out;
	}
	v = json_object_get(header, "typ"); /* borrowed */
	if (v && !(json_is_string(v) &&
		   strcmp(json_string_value(v), "JWT") == 0)) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: header \"typ\" is not \"JWT\"");
		goto out;
	}

	rc = decode_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload",
			    &payload, e);
	if (rc)
		goto out;
	rc = get_claim(payload, "id", true, c.id, e);
	if (!rc)
		rc = get_claim(payload, "collectionId", true, c.collection_id,
			       e);
	if (!rc)
		rc = get_claim(payload, "type", false, c.type, e);
	if (rc)
		goto out;
	v = json_object_get(payload, "exp"); /* borrowed */
	if (!json_is_integer(v)) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: claim \"exp\" is missing or not "
			     "an integer");
		goto out;
	}
	c.exp = (int64_t)json_integer_value(v);
	v = json_object_get(payload, "refreshable"); /* borrowed */
	if (v && !json_is_boolean(v)) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: claim \"refreshable\" is not a "
			     "boolean");
		goto out;
	}
	c.refreshable = json_is_true(v);

	rc = b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &slen);
	if (rc == ERR_NOMEM) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (rc) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: signature is not valid "
			     "base64url");
		goto out;
	}
	if (slen != SHA256_LEN) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "malformed token: signature is %zu bytes, "
			     "expected %d", slen, SHA256_LEN);
		goto out;
	}

	/* The claims are only checked for shape so far: find the record
	 * whose tokenKey the signature must have been made with. */
	tkey = lookup ? lookup(arg, c.collection_id, c.id) : NULL;
	if (!tkey || !*tkey) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "token record '%s' in collection '%s' was not "
			     "found", c.id, c.collection_id);
		goto out;
	}
	rc = sign(k, tkey, token, (size_t)(dot2 - token), mac, e);
	if (rc)
		goto out;
	if (CRYPTO_memcmp(mac, sig, SHA256_LEN) != 0) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "token signature does not match");
		goto out;
	}
	/* From here on the claims are ours. */
	if (now >= c.exp) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "token expired at %lld (now %lld)",
			     (long long)c.exp, (long long)now);
		goto out;
	}
	if (strcmp(c.type, "auth") != 0) {
		rc = err_set(e, ERR_UNAUTHORIZED,
			     "token type %s is not \"auth\"",
			     printable(c.type, q2));
		goto out;
	}
	if (out)
		*out = c;
out:
	if (tkey) {
		OPENSSL_cleanse(tkey, strlen(tkey));
		free(tkey);
	}
	json_decref(header);
	json_decref(payload);
	free(sig);
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

const char *auth_header_token(const char *header_value)
{
	const char *p = header_value;

	if (!p)
		return NULL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "Bearer", 6) == 0 &&
	    (p[6] == ' ' || p[6] == '\t' || p[6] == '\0')) {
		p += 6;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	return *p ? p : NULL;
}
