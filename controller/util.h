/*
 * util.h - small shared helpers: record ids, timestamps, and file-system
 * primitives (recursive mkdir, atomic replace-by-rename).
 */
#ifndef POCKETCTL_UTIL_H
#define POCKETCTL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define ID_LEN 15          /* PocketBase record ids: 15 chars of [a-z0-9] */
#define TIME_LEN 24        /* "2026-11-25 16:56:20.123Z" */

/* Fill out (ID_LEN + 1 bytes) with a fresh random id from getrandom(2). */
void util_new_id(char out[ID_LEN + 1]);

/*
 * Fill out with a fresh record id, in PocketBase's form (ID_LEN chars of
 * [a-z0-9]): 8 chars of the time in milliseconds, base 36 in ASCII order,
 * then 7 random ones (36^7 per millisecond). Ids made later sort later, so
 * a new record lands at the end of the primary key's B-tree instead of on
 * a random page: a batch of creates dirties (and syncs) a few pages, not
 * one 4 KiB page each. Like UUIDv7/ULID, an id tells when it was made,
 * which the record's "created" says anyway. Not for secrets: use
 * util_new_id().
 */
void util_new_record_id(char out[ID_LEN + 1]);

/* True when s is exactly ID_LEN chars of [a-z0-9]. */
bool util_valid_id(const char *s);

/* Current UTC time in PocketBase's "YYYY-MM-DD HH:MM:SS.sssZ" form. */
void util_now(char out[TIME_LEN + 1]);

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t util_monotonic_ms(void);

/* Sleep while *word == val, at most until deadline_ms (util_monotonic_ms
 * clock). May return early (a wake, a signal): callers look again. */
void util_futex_wait(_Atomic uint32_t *word, uint32_t val,
		     int64_t deadline_ms);

/* Wake every thread sleeping on word in util_futex_wait(). */
void util_futex_wake(_Atomic uint32_t *word);

/* The integer in environment variable name when it is set and lies in
 * [min, max]; def when unset or empty. A value that is set but not such
 * an integer is ignored with a warning on stderr naming it, and gives
 * def. */
int64_t util_env_int(const char *name, int64_t def, int64_t min,
		     int64_t max);

/*
 * Create directory path and its missing parents with mode 0755.
 * Existing directories are fine; a non-directory in the way is ERR_IO
 * naming it.
 */
int fs_mkdirs(const char *path, struct err *e);

/*
 * Replace the file at path with exactly data[0..len) atomically: a temporary
 * file in the same directory, fsync, chmod mode, rename over path, fsync of
 * the directory. Missing parent directories are created. A crash leaves
 * either the old file or the new one, never a mix. On error the old file is
 * left intact, the temporary removed, and e names the step that failed.
 */
int fs_write_atomic(const char *path, const void *data, size_t len,
		    mode_t mode, struct err *e);

/* Join a and b with one '/', into a malloc'd string (NULL on OOM). */
char *path_join(const char *a, const char *b);

/* True when name is a safe single path component: non-empty, no '/', and
 * neither "." nor "..". */
bool path_component_ok(const char *name);

#endif
