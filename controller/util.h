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

#include <jansson.h>

#include "err.h"

struct buf;
struct stat;

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

/* The running binary's GNU build id in hex ("" when it has none): what
 * changes with every build, for what a build may interpret differently
 * (apply's text digests). Static storage; thread-safe. */
const char *util_build_id(void);

/* Current UTC time in PocketBase's "YYYY-MM-DD HH:MM:SS.sssZ" form. */
void util_now(char out[TIME_LEN + 1]);

/* ms since the epoch (UTC) in util_now()'s form into out. */
void util_format_ms(int64_t ms, char out[TIME_LEN + 1]);

/* v in decimal into out, NUL-terminated; returns its length (at most
 * 20). As printf's %lld, without printf (it runs per event and stream). */
#define UTIL_INT_LEN 21
size_t util_format_int(int64_t v, char out[UTIL_INT_LEN]);

/* FNV-1a (64 bits) of p[0..n), going on from h (UTIL_HASH_INIT to start):
 * for choosing a hash-table slot, never where a collision would matter. */
#define UTIL_HASH_INIT 0xcbf29ce484222325ULL
uint64_t util_hash(const void *p, size_t n, uint64_t h);

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
 * an integer is ignored with a warning log line (log.h) naming it, and gives
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

/*
 * Confined file operations. Each one splits path into a base directory and
 * the part below it - root when path lies under root, else "/" (a path the
 * configuration put outside the root on purpose) - opens the base as it is
 * (the operator chose it) and walks the rest one component at a time from
 * that directory fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
 * falling back to openat(O_NOFOLLOW | O_DIRECTORY) per component where the
 * kernel lacks openat2. A symbolic link anywhere below the base, a ".."
 * component, or a non-directory in the way is ERR_IO naming that component
 * ("'R/workspace/.opencode/agents' is a symbolic link; refusing to follow
 * it"); nothing is followed, created or written beyond it. root may be NULL
 * (then everything is walked from "/").
 */

/*
 * openat2(dfd, rel, flags) confined below the directory fd dfd:
 * RESOLVE_BENEATH (an absolute rel, a ".." above dfd or a symlink leading
 * out fails with EXDEV) plus RESOLVE_NO_SYMLINKS (no symlink at all:
 * ELOOP), or, when follow_symlinks, RESOLVE_NO_MAGICLINKS (symlinks that
 * stay below dfd are followed; /proc magic links never are). Returns the
 * fd, or -errno (-ENOSYS where the kernel lacks openat2).
 */
int fs_openat_beneath(int dfd, const char *rel, int flags,
		      bool follow_symlinks);

/*
 * Open the directory dir (its missing components created with mode 0755
 * when create) and return its fd (O_RDONLY | O_DIRECTORY | O_CLOEXEC; the
 * caller closes it), or a negative ERR_*: ERR_NOT_FOUND when a component
 * is missing and !create, ERR_IO as above.
 */
int fs_open_dir_beneath(const char *root, const char *dir, bool create,
			struct err *e);

/*
 * fs_write_atomic() through a confined walk: the parent of path is opened
 * (created when missing) as fs_open_dir_beneath() does, and the temporary
 * file, its fsync, the rename and the directory fsync all happen relative
 * to that fd, so a directory swapped for a symlink half-way cannot
 * redirect the write. Same guarantees and errors as fs_write_atomic().
 */
int fs_write_beneath(const char *root, const char *path, const void *data,
		     size_t len, mode_t mode, struct err *e);

/*
 * Look at path through a confined walk. Returns 0 when it (or a directory
 * on the way) is missing, 1 when it exists: *st is filled (its own mode,
 * a symlink as a symlink) and, when it is a regular file, its bytes are
 * appended to b (the cap of b applies: ERR_TOO_LARGE). Negative ERR_* on
 * error (a symlinked directory on the way, a read error), e naming it.
 */
int fs_read_beneath(const char *root, const char *path, struct buf *b,
		    struct stat *st, struct err *e);

/* Remove the file path through a confined walk; a missing file (or
 * directory on the way) is fine. Errors as fs_open_dir_beneath(). */
int fs_unlink_beneath(const char *root, const char *path, struct err *e);

/* Join a and b with one '/', into a malloc'd string (NULL on OOM). */
char *path_join(const char *a, const char *b);

/* True when name is a safe single path component: non-empty, no '/', and
 * neither "." nor "..". */
bool path_component_ok(const char *name);

/*
 * The string member key of a request body into *out ("" when absent or
 * null; borrowed from body): another type is ERR_INVALID naming key, and
 * so is an empty one when required, or one longer than max bytes (0: no
 * limit).
 */
int util_json_str(json_t *body, const char *key, bool required, size_t max,
		  const char **out, struct err *e);

#endif
