/*
 * authorized_keys.c - the sandbox's authorized_keys from ssh_keys records:
 * active, unexpired, well-formed public keys, sorted and de-duplicated.
 *
 * Nothing has written this file since the original relay was removed (so
 * SSH key sync was broken), and expires_at was never honoured. A key is
 * accepted only in the bare "<type> <base64> [comment]" form, with its
 * blob naming the same type, so no authorized_keys options (command=,
 * environment=, from=) and no extra lines can be smuggled in: sshkey.h's
 * parser, the one the ssh_keys write hook checks every write with.
 */
#include "render.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sshkey.h"

struct line {
	const char *p;       /* borrowed from the record */
	size_t n;
};

static int cmp_line(const void *pa, const void *pb)
{
	const struct line *a = pa, *b = pb;
	int c = memcmp(a->p, b->p, a->n < b->n ? a->n : b->n);

	if (c)
		return c;
	return a->n < b->n ? -1 : a->n > b->n;
}

/* A UTC time as (y, mo, d, h, mi, s, ns), from "YYYY-MM-DD HH:MM:SS[.f]Z"
 * ('T' accepted for the space). */
static bool parse_time(const char *s, long long t[7])
{
	static const int lim[6] = { 9999, 12, 31, 23, 59, 60 };
	static const char sep[6] = { '-', '-', ' ', ':', ':', '\0' };
	static const int widths[6] = { 4, 2, 2, 2, 2, 2 };
	int f, i, digits = 0;
	long long v, frac = 0;

	for (f = 0; f < 6; f++) {
		v = 0;
		for (i = 0; i < widths[f]; i++, s++) {
			if (*s < '0' || *s > '9')
				return false;
			v = v * 10 + (*s - '0');
		}
		if (v > lim[f] || ((f == 1 || f == 2) && v == 0))
			return false;
		t[f] = v;
		if (f < 5) {
			if (!(*s == sep[f] || (f == 2 && *s == 'T')))
				return false;
			s++;
		}
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 9)
				frac = frac * 10 + (*s - '0');
		if (digits == 0)
			return false;
		for (; digits < 9; digits++)
			frac *= 10;
	}
	t[6] = frac;
	return s[0] == 'Z' && s[1] == '\0';
}

static int cmp_time(const long long a[7], const long long b[7])
{
	int i;

	for (i = 0; i < 7; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

int render_authorized_keys(json_t *ssh_keys, const char *now,
			   struct buf *out, json_t *warnings, struct err *e)
{
	struct buf res = BUF_INIT;
	struct line *lines = NULL;
	json_t **recs = NULL, *data, *pk, *exp;
	size_t nrecs = 0, nlines = 0, i, n;
	long long tnow[7], texp[7];
	const char *p, *why;
	int rc, nomem;

	if (!now || !parse_time(now, tnow))
		return err_set(e, ERR_INVALID, "now '%s' is not a time of the "
			       "form YYYY-MM-DD HH:MM:SS.sssZ",
			       now ? now : "(null)");
	rc = render_sorted_records(ssh_keys, "ssh_keys", &recs, &nrecs,
				   warnings, e);
	if (rc)
		return rc;
	if (nrecs) {
		lines = calloc(nrecs, sizeof(*lines));
		if (!lines)
			goto nomem;
	}
	for (i = 0; i < nrecs; i++) {
		data = json_object_get(recs[i], "data");
		if (!json_is_true(json_object_get(data, "is_active")))
			continue;
		exp = json_object_get(data, "expires_at");
		if (json_is_string(exp) && json_string_length(exp)) {
			if (!parse_time(json_string_value(exp), texp)) {
				rc = render_warn(warnings, "ssh_keys '%s': "
						 "expires_at '%s' is not a valid "
						 "time; key skipped",
						 render_label(recs[i]),
						 json_string_value(exp));
				if (rc)
					goto nomem;
				continue;
			}
			if (cmp_time(texp, tnow) <= 0)
				continue;
		} else if (exp && !json_is_null(exp) && !json_is_string(exp)) {
			rc = render_warn(warnings, "ssh_keys '%s': expires_at "
					 "is not a string; key skipped",
					 render_label(recs[i]));
			if (rc)
				goto nomem;
			continue;
		}
		pk = json_object_get(data, "public_key");
		p = json_is_string(pk) ? json_string_value(pk) : "";
		n = json_is_string(pk) ? json_string_length(pk) : 0;
		sshkey_trim(&p, &n);
		why = sshkey_parse(p, n, NULL, &nomem);
		if (nomem)
			goto nomem;
		if (why) {
			rc = render_warn(warnings, "ssh_keys '%s': public_key "
					 "%s; skipped", render_label(recs[i]),
					 why);
			if (rc)
				goto nomem;
			continue;
		}
		lines[nlines].p = p;
		lines[nlines].n = n;
		nlines++;
	}
	if (nlines > 1)
		qsort(lines, nlines, sizeof(*lines), cmp_line);

	res.cap = out->cap > out->len ? out->cap - out->len : 0;
	for (i = 0; i < nlines; i++) {
		if (i && !cmp_line(&lines[i], &lines[i - 1]))
			continue;
		rc = buf_add(&res, lines[i].p, lines[i].n);
		if (!rc)
			rc = buf_putc(&res, '\n');
		if (rc)
			goto fail;
	}
	rc = buf_add(out, res.ptr, res.len);
	if (rc)
		goto fail;
	goto out;

nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
	goto out;
fail:
	if (rc == ERR_TOO_LARGE)
		err_set(e, rc, "authorized_keys: rendered file is larger than "
			"the limit of %zu bytes", out->cap);
	else
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	buf_release(&res);
	free(lines);
	free(recs);
	return rc;
}
