/*
 * rec_authorized_keys.c - the sandbox's authorized_keys from active,
 * unexpired ssh_keys (render_authorized_keys(), mode 0644: public keys,
 * and sshd refuses group/other-writable files). A key that expires later
 * must leave the file at that moment, not at the next change: the pass
 * asks to run again just after the earliest future expires_at.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "reconciler.h"
#include "render.h"

#define KEYS_MODE 0644

static const char *const reads[] = { "ssh_keys", NULL };

static const struct reconciler_path paths[] = {
	{ "authorized_keys", "ssh_keys/authorized_keys", false },
	{ NULL, NULL, false },
};

/* "YYYY-MM-DD HH:MM:SS[.sss]Z" (or with 'T') as ms since the epoch;
 * -1 when malformed. */
static int64_t parse_ms(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	unsigned frac = 0;
	char sep;

	if (!s || sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep,
			 &h, &mi, &sec, &n) != 7 || (sep != ' ' && sep != 'T'))
		return -1;
	if (s[n] == '.' && sscanf(s + n + 1, "%3u", &frac) != 1)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return (int64_t)timegm(&tm) * 1000 + frac;
}

/* Ask for a pass right after the earliest expiry still ahead. */
static void requeue_at_expiry(struct rctx *c, json_t *keys)
{
	int64_t now = parse_ms(rctx_now(c)), best = -1, t;
	json_t *rec, *active;
	size_t i;

	json_array_foreach(keys, i, rec) {
		active = json_object_get(json_object_get(rec, "data"),
					 "is_active");
		if (!json_is_true(active))
			continue;
		t = parse_ms(render_data_str(rec, "expires_at"));
		if (t > now && (best < 0 || t < best))
			best = t;
	}
	if (best > 0 && now >= 0)
		rctx_requeue_after(c, best - now + 1);
}

static int reconcile(struct rctx *c, struct err *e)
{
	struct buf out = BUF_INIT;
	const char *path = rctx_path(c, "authorized_keys");
	json_t *keys;
	int rc;

	if (!path)
		return 0;
	rc = rctx_records(c, "ssh_keys", &keys, e);
	if (!rc)
		rc = render_authorized_keys(keys, rctx_now(c), &out,
					    rctx_warnings(c), e);
	if (rc)
		rctx_keep(c, path, e);
	else
		rc = rctx_write(c, path, &out, KEYS_MODE, NULL, e);
	if (!rc)
		requeue_at_expiry(c, keys);
	buf_release(&out);
	return rc;
}

const struct reconciler rec_authorized_keys = {
	.name = "authorized-keys",
	.description = "active, unexpired ssh_keys -> authorized_keys",
	.reads = reads,
	.paths = paths,
	.reconcile = reconcile,
};
