/*
 * suggest.h - "did you mean" for a misspelt name.
 *
 * A word is compared with candidates (a schema's kinds, a collection's
 * field names, the manifest's keys) by Damerau-Levenshtein distance
 * (optimal string alignment: insertions, deletions, substitutions and
 * swaps of two neighbours), ignoring case; a candidate that differs only
 * in case is the best match there is. A candidate is close enough when
 * its distance is at most 1 for words of up to 3 bytes, else at most 2 or
 * a third of the word's length, whichever is more. Words longer than
 * SUGGEST_MAX_LEN bytes get no suggestion.
 *
 *     struct suggest s;
 *     suggest_init(&s, "patern");
 *     for (each field f) suggest_consider(&s, f->name, f->name);
 *     hint = suggest_result(&s);          // "pattern", or NULL
 */
#ifndef POCKETCTL_SUGGEST_H
#define POCKETCTL_SUGGEST_H

#include <stddef.h>

#define SUGGEST_MAX_LEN 64

struct suggest {
	const char *word;      /* borrowed */
	size_t len;
	int best;              /* distance of pick; larger than any when none */
	const char *pick;      /* borrowed from a suggest_consider() call */
};

void suggest_init(struct suggest *s, const char *word);

/*
 * Compare the word with candidate; when it is closer than every earlier
 * one (ties keep the earlier) and close enough, answer (borrowed; the
 * candidate itself, or what to suggest for it, such as the kind for a
 * collection name) becomes the result. The word itself (same case) is
 * never suggested.
 */
void suggest_consider(struct suggest *s, const char *candidate,
		      const char *answer);

/* The answer to suggest, or NULL when no candidate was close enough. */
const char *suggest_result(const struct suggest *s);

/*
 * " (did you mean 'X'?)" for the result into out (size n), or "" when there
 * is none: ready to append to a message.
 */
void suggest_hint(const struct suggest *s, char *out, size_t n);

/* The distance between a and b as above (ignoring case); for tests. */
int suggest_distance(const char *a, const char *b);

#endif
