/*
 * suggest.c - "did you mean" by Damerau-Levenshtein distance (see
 * suggest.h). Bounded words, fixed rows: no allocation.
 */
#include "suggest.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FAR (SUGGEST_MAX_LEN * 4)   /* more than any distance computed */

static int min3(int a, int b, int c)
{
	int m = a < b ? a : b;

	return m < c ? m : c;
}

static int lower(char c)
{
	return tolower((unsigned char)c);
}

/* Optimal string alignment distance, ignoring case; FAR when either word
 * is longer than SUGGEST_MAX_LEN. */
static int osa(const char *a, size_t la, const char *b, size_t lb)
{
	int rows[3][SUGGEST_MAX_LEN + 1];
	int *pp, *p, *cur, *t;
	size_t i, j;

	if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
		return FAR;
	pp = rows[0];
	p = rows[1];
	cur = rows[2];
	for (j = 0; j <= lb; j++)
		p[j] = (int)j;
	for (i = 1; i <= la; i++) {
		cur[0] = (int)i;
		for (j = 1; j <= lb; j++) {
			int cost = lower(a[i - 1]) != lower(b[j - 1]);

			cur[j] = min3(p[j] + 1, cur[j - 1] + 1,
				      p[j - 1] + cost);
			if (i > 1 && j > 1 &&
			    lower(a[i - 1]) == lower(b[j - 2]) &&
			    lower(a[i - 2]) == lower(b[j - 1]) &&
			    pp[j - 2] + 1 < cur[j])
				cur[j] = pp[j - 2] + 1;
		}
		t = pp;
		pp = p;
		p = cur;
		cur = t;
	}
	return p[lb];
}

int suggest_distance(const char *a, const char *b)
{
	return osa(a, strlen(a), b, strlen(b));
}

/* The largest distance still worth a suggestion for a word of len bytes. */
static int limit(size_t len)
{
	if (len <= 3)
		return 1;
	return len / 3 > 2 ? (int)(len / 3) : 2;
}

void suggest_init(struct suggest *s, const char *word)
{
	s->word = word ? word : "";
	s->len = strlen(s->word);
	s->best = FAR;
	s->pick = NULL;
}

void suggest_consider(struct suggest *s, const char *candidate,
		      const char *answer)
{
	int d;

	if (!candidate || !answer || !strcmp(candidate, s->word))
		return;
	/* Case only: distance 0, better than any spelling mistake. */
	d = osa(s->word, s->len, candidate, strlen(candidate));
	if (d < s->best && d <= limit(s->len)) {
		s->best = d;
		s->pick = answer;
	}
}

const char *suggest_result(const struct suggest *s)
{
	return s->pick;
}

void suggest_hint(const struct suggest *s, char *out, size_t n)
{
	if (!n)
		return;
	if (!s->pick) {
		out[0] = '\0';
		return;
	}
	snprintf(out, n, " (did you mean '%s'?)", s->pick);
}
