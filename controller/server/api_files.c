/*
 * api_files.c - GET /api/pocketcoder/files/{path} and its old name
 * artifact/{path} (see api_files.h): a path checked as text, opened once
 * below the workspace's directory fd, judged on fstat() of what was
 * opened, then streamed from that fd or listed.
 */
#include "api_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "server.h"

#define MSG_AUTH "The request requires valid record authorization token."
#define PATH_MAX_LEN 4096
#define CHUNK ((size_t)64 << 10)
#define LIST_MAX 100000
#define PER_PAGE_DEFAULT 30
#define PER_PAGE_MAX 1000
#define SECRETS_MAX 16

/* ---- the path ------------------------------------------------------------ */

/*
 * Check the request path: the raw (still encoded) tail after the route's
 * prefix must not encode '/' or '\' (a name that holds them cannot exist;
 * they can only be meant to slip past a check), and the decoded one must
 * be relative, without "..", at most PATH_MAX_LEN bytes. The router has
 * already refused NUL bytes and invalid UTF-8 (400). Returns 0 or
 * ERR_FORBIDDEN with e set.
 */
static int check_path(const struct http_req *r, const char *path,
		      struct err *e)
{
	const char *raw = r->ri->local_uri_raw, *p, *end;
	size_t plen = strlen(r->route) - 1;   /* the pattern without '*' */

	if (raw && strlen(raw) >= plen)
		for (p = raw + plen; (p = strchr(p, '%')) != NULL; p++)
			if (!strncasecmp(p, "%2f", 3) ||
			    !strncasecmp(p, "%5c", 3))
				return err_set(e, ERR_FORBIDDEN, "path escape: "
					       "an encoded '/' or '\\' in the "
					       "path");
	if (strlen(path) > PATH_MAX_LEN)
		return err_set(e, ERR_FORBIDDEN, "path escape: the path is "
			       "longer than %d bytes", PATH_MAX_LEN);
	if (path[0] == '/')
		return err_set(e, ERR_FORBIDDEN, "path escape: absolute path "
			       "'%.200s'", path);
	for (p = path; *p; p = *end ? end + 1 : end) {
		end = p + strcspn(p, "/");
		if (end - p == 2 && p[0] == '.' && p[1] == '.')
			return err_set(e, ERR_FORBIDDEN, "path escape: '..' in "
				       "'%.200s'", path);
	}
	return 0;
}

/* Whether st is one of the files the reconcilers declare secret (the same
 * inode, whatever name or link reached it). */
static bool is_secret(struct server *srv, const struct stat *st)
{
	const char *paths[SECRETS_MAX];
	struct stat s;
	size_t n, i;

	n = engine_secret_paths(srv->engine, paths, SECRETS_MAX);
	for (i = 0; i < n && i < SECRETS_MAX; i++)
		if (stat(paths[i], &s) == 0 && s.st_dev == st->st_dev &&
		    s.st_ino == st->st_ino)
			return true;
	return false;
}

/*
 * Open path below the workspace (rel "" is the workspace itself) and fstat
 * it into *st. Returns the fd or a negative ERR_* with e set: ERR_NOT_FOUND
 * (missing), ERR_FORBIDDEN (leads outside, a magic link, too long,
 * refused by the file system's permissions), ERR_IO.
 */
static int open_below(struct server *srv, const char *path, struct stat *st,
		      struct err *e)
{
	char *ws = path_join(srv->opts->root_dir, "workspace");
	const char *rel = *path ? path : ".";
	int wfd = -1, fd = -1, rc;

	if (!ws)
		return err_set(e, ERR_NOMEM, "out of memory");
	wfd = open(ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wfd < 0) {
		rc = errno == ENOENT ?
		     err_set(e, ERR_NOT_FOUND, "there is no workspace") :
		     err_set(e, ERR_IO, "cannot open the workspace: %s",
			     strerror(errno));
		goto out;
	}
	/* O_NONBLOCK: a FIFO planted in the workspace must not hang the
	 * worker; it is refused below as not a regular file. */
	fd = fs_openat_beneath(wfd, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK |
			       O_CLOEXEC, true);
	if (fd >= 0) {
		rc = fstat(fd, st) == 0 ? fd :
		     err_set(e, ERR_IO, "cannot stat '%.200s': %s", path,
			     strerror(errno));
		goto out;
	}
	switch (-fd) {
	case ENOENT:
	case ENOTDIR:
		rc = err_set(e, ERR_NOT_FOUND, "'%.200s' is not in the "
			     "workspace", path);
		break;
	case EXDEV:
		rc = err_set(e, ERR_FORBIDDEN, "path escape: '%.200s' leads "
			     "outside the workspace", path);
		break;
	case ELOOP:
		rc = err_set(e, ERR_FORBIDDEN, "'%.200s': too many symbolic "
			     "links, or a magic link", path);
		break;
	case ENAMETOOLONG:
		rc = err_set(e, ERR_FORBIDDEN, "path escape: a name in "
			     "'%.200s' is too long", path);
		break;
	case EACCES:
	case EPERM:
		rc = err_set(e, ERR_FORBIDDEN, "'%.200s' is not readable",
			     path);
		break;
	case ENOSYS:
		rc = err_set(e, ERR_UNAVAILABLE, "this kernel has no "
			     "openat2(2); files are not served without it");
		break;
	default:
		rc = err_set(e, ERR_IO, "cannot open '%.200s': %s", path,
			     strerror(-fd));
	}
out:
	if (wfd >= 0)
		close(wfd);
	if (rc < 0 && fd >= 0)
		close(fd);
	free(ws);
	return rc;
}

/* 0 when the opened st may be served, else ERR_FORBIDDEN with e set. */
static int may_serve(struct server *srv, const char *path,
		     const struct stat *st, struct err *e)
{
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		return err_set(e, ERR_FORBIDDEN, "'%.200s' is not a regular "
			       "file or a directory", path);
	if (S_ISREG(st->st_mode) && is_secret(srv, st))
		return err_set(e, ERR_FORBIDDEN, "'%.200s' holds secrets "
			       "rendered by pocketctl; it is never served",
			       path);
	if (!(st->st_mode & S_IROTH))
		return err_set(e, ERR_FORBIDDEN, "'%.200s' is not "
			       "world-readable; it is not served", path);
	if (S_ISREG(st->st_mode) && st->st_nlink > 1)
		return err_set(e, ERR_FORBIDDEN, "'%.200s' has %ju hard "
			       "links; only files with one are served", path,
			       (uintmax_t)st->st_nlink);
	return 0;
}

/* ---- directories ------------------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* PocketBase's "YYYY-MM-DD HH:MM:SS.sssZ" for t. */
static void pb_time(const struct timespec *t, char out[TIME_LEN + 1])
{
	struct tm tm;
	size_t n;

	gmtime_r(&t->tv_sec, &tm);
	n = strftime(out, TIME_LEN + 1, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(out + n, TIME_LEN + 1 - n, ".%03dZ",
		 (int)(t->tv_nsec / 1000000) % 1000);
}

static const char *type_name(mode_t m)
{
	if (S_ISREG(m))
		return "file";
	if (S_ISDIR(m))
		return "dir";
	if (S_ISLNK(m))
		return "symlink";
	return "other";
}

/* The listing of directory fd (taken over: closed here). */
static int list_dir(struct http_req *r, int fd, const char *path)
{
	struct err e = ERR_INIT;
	int64_t page, per, pages, i;
	char **names = NULL, mod[TIME_LEN + 1];
	size_t n = 0, alloc = 0, k;
	json_t *items = NULL, *body = NULL;
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int rc;

	d = fdopendir(fd);
	if (!d) {
		close(fd);
		rc = err_set(&e, ERR_IO, "cannot list '%.200s': %s", path,
			     strerror(errno));
		goto out;
	}
	rc = http_query_page(r, PER_PAGE_DEFAULT, PER_PAGE_MAX, &page, &per,
			     &e);
	if (rc)
		goto out;
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		/* A name JSON cannot carry (nor the router take back) is
		 * left out, rather than failing the whole listing. */
		if (!http_utf8_valid(de->d_name, strlen(de->d_name)))
			continue;
		if (n == LIST_MAX) {
			rc = err_set(&e, ERR_TOO_LARGE, "directory '%.200s' has "
				     "more than %d entries", path, LIST_MAX);
			goto out;
		}
		if (n == alloc) {
			char **nn = realloc(names, (alloc = alloc ? alloc * 2 :
						    64) * sizeof(*names));
			if (!nn)
				goto nomem;
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto nomem;
		n++;
	}
	if (errno) {
		rc = err_set(&e, ERR_IO, "cannot list '%.200s': %s", path,
			     strerror(errno));
		goto out;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_name);
	items = json_array();
	if (!items)
		goto nomem;
	for (i = (page - 1) * per; i < (int64_t)n && i < page * per; i++) {
		json_t *it;

		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;   /* gone since readdir() */
		pb_time(&st.st_mtim, mod);
		it = json_pack("{s:s, s:s, s:I, s:s}", "name", names[i], "type",
			       type_name(st.st_mode), "size",
			       (json_int_t)(S_ISREG(st.st_mode) ? st.st_size : 0),
			       "modified", mod);
		/* it is stolen by the array, also on failure */
		if (!it || json_array_append_new(items, it))
			goto nomem;
	}
	pages = ((int64_t)n + per - 1) / per;
	/* "o" steals items, also on failure */
	body = json_pack("{s:I, s:I, s:I, s:I, s:o}", "page", (json_int_t)page,
			 "perPage", (json_int_t)per, "totalItems",
			 (json_int_t)n, "totalPages", (json_int_t)pages,
			 "items", items);
	items = NULL;
	if (!body)
		goto nomem;
	goto out;
nomem:
	rc = err_set(&e, ERR_NOMEM, "out of memory");
out:
	if (d)
		closedir(d);
	for (k = 0; k < n; k++)
		free(names[k]);
	free(names);
	json_decref(items);
	if (rc) {
		json_decref(body);
		return http_reply_error(r, &e);
	}
	return http_reply_json(r, 200, body,
			       "X-Content-Type-Options: nosniff\r\n"
			       "Cache-Control: private, no-cache\r\n");
}

/* ---- files ------------------------------------------------------------- */

struct ctype {
	const char *ext;
	const char *type;
	bool active;      /* can run script in a browser: attachment */
};

static const struct ctype ctypes[] = {
	{ "html", "text/html; charset=utf-8", true },
	{ "htm", "text/html; charset=utf-8", true },
	{ "xhtml", "application/xhtml+xml", true },
	{ "svg", "image/svg+xml", true },
	{ "xml", "application/xml", true },
	{ "txt", "text/plain; charset=utf-8", false },
	{ "log", "text/plain; charset=utf-8", false },
	{ "md", "text/markdown; charset=utf-8", false },
	{ "csv", "text/csv; charset=utf-8", false },
	{ "json", "application/json", false },
	{ "yaml", "application/yaml", false },
	{ "yml", "application/yaml", false },
	{ "js", "text/javascript; charset=utf-8", false },
	{ "mjs", "text/javascript; charset=utf-8", false },
	{ "css", "text/css; charset=utf-8", false },
	{ "png", "image/png", false },
	{ "jpg", "image/jpeg", false },
	{ "jpeg", "image/jpeg", false },
	{ "gif", "image/gif", false },
	{ "webp", "image/webp", false },
	{ "ico", "image/x-icon", false },
	{ "pdf", "application/pdf", false },
	{ "zip", "application/zip", false },
	{ "gz", "application/gzip", false },
	{ "tar", "application/x-tar", false },
	{ "wasm", "application/wasm", false },
	{ "mp4", "video/mp4", false },
	{ "webm", "video/webm", false },
	{ "mp3", "audio/mpeg", false },
	{ "wav", "audio/wav", false },
};

static const struct ctype *ctype_of(const char *path)
{
	static const struct ctype other = { "", "application/octet-stream",
					    false };
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash + 1 : path, '.');
	size_t i;

	for (i = 0; dot && i < sizeof(ctypes) / sizeof(ctypes[0]); i++)
		if (!strcasecmp(dot + 1, ctypes[i].ext))
			return &ctypes[i];
	return &other;
}

/* Whether the If-None-Match list hdr holds etag (weak comparison, as RFC
 * 9110 wants for it) or is "*". */
static bool etag_listed(const char *hdr, const char *etag)
{
	const char *p = hdr, *end;
	size_t n = strlen(etag);

	while (*p) {
		p += strspn(p, " \t,");
		if (!*p)
			break;
		end = p + strcspn(p, ",");
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end - p == 1 && *p == '*')
			return true;
		if (end - p > 2 && !strncmp(p, "W/", 2))
			p += 2;
		if ((size_t)(end - p) == n && !memcmp(p, etag, n))
			return true;
		p = end + strcspn(end, ",");
	}
	return false;
}

/* A decimal number p[0..n), all digits, no overflow. */
static bool parse_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 19)
		return false;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

enum range { RANGE_NONE, RANGE_ONE, RANGE_BAD, RANGE_UNSATISFIABLE };

/* Parse Range hdr against a file of size bytes into [*from, *to]. */
static enum range parse_range(const char *hdr, uint64_t size, uint64_t *from,
			      uint64_t *to)
{
	const char *p, *dash, *end;
	uint64_t a, b;

	if (strncasecmp(hdr, "bytes=", 6))
		return RANGE_BAD;
	p = hdr + 6;
	if (strchr(p, ','))
		return RANGE_NONE;   /* several ranges: the whole file */
	p += strspn(p, " \t");
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	dash = memchr(p, '-', (size_t)(end - p));
	if (!dash)
		return RANGE_BAD;
	if (dash == p) {             /* "-N": the last N bytes */
		if (!parse_u64(dash + 1, (size_t)(end - dash - 1), &b))
			return RANGE_BAD;
		if (b == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		*from = b >= size ? 0 : size - b;
		*to = size - 1;
		return RANGE_ONE;
	}
	if (!parse_u64(p, (size_t)(dash - p), &a))
		return RANGE_BAD;
	if (dash + 1 == end) {
		b = UINT64_MAX;
	} else if (!parse_u64(dash + 1, (size_t)(end - dash - 1), &b) ||
		   b < a) {
		return RANGE_BAD;
	}
	if (a >= size)
		return RANGE_UNSATISFIABLE;
	*from = a;
	*to = b >= size ? size - 1 : b;
	return RANGE_ONE;
}

/* 416 with Content-Range: bytes * /size and a PocketBase error body. */
static int reply_416(struct http_req *r, uint64_t size, const char *why)
{
	char extra[128];
	json_t *body = json_pack("{s:i, s:s, s:{}}", "status", 416, "message",
				 why, "data");

	snprintf(extra, sizeof(extra), "Content-Range: bytes */%" PRIu64
		 "\r\nX-Content-Type-Options: nosniff\r\n", size);
	return http_reply_json(r, 416, body, extra);   /* body stolen */
}

/* Write [from, to] of fd to the client in CHUNK-sized pieces. A file that
 * shrank under us, or a client that went away, ends the connection: the
 * Content-Length already sent can no longer be kept. */
static void stream_range(struct http_req *r, int fd, uint64_t from,
			 uint64_t to)
{
	char *chunk = malloc(CHUNK);
	uint64_t off = from;
	ssize_t got;
	size_t want;

	while (chunk && off <= to) {
		want = to - off + 1 < CHUNK ? (size_t)(to - off + 1) : CHUNK;
		got = pread(fd, chunk, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || mg_write(r->conn, chunk, (size_t)got) <= 0)
			break;
		off += (uint64_t)got;
	}
	if (off <= to)
		mg_disable_connection_keep_alive(r->conn);
	free(chunk);
}

static int serve_file(struct http_req *r, int fd, const char *path,
		      const struct stat *st)
{
	const struct ctype *ct = ctype_of(path);
	const char *inm = http_header(r, "If-None-Match");
	const char *range = http_header(r, "Range");
	const char *ifr = http_header(r, "If-Range");
	uint64_t size = (uint64_t)st->st_size, from = 0, to = 0;
	char etag[80], lastmod[40], extra[512], cr[96] = "";
	bool partial = false;
	struct tm tm;
	int status = 200;

	snprintf(etag, sizeof(etag), "\"%jx-%jx-%jx.%lx\"",
		 (uintmax_t)st->st_ino, (uintmax_t)st->st_size,
		 (uintmax_t)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
	gmtime_r(&st->st_mtim.tv_sec, &tm);
	strftime(lastmod, sizeof(lastmod), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (inm && etag_listed(inm, etag)) {
		snprintf(extra, sizeof(extra), "ETag: %s\r\nLast-Modified: "
			 "%s\r\nCache-Control: private, no-cache\r\n", etag,
			 lastmod);
		return http_reply_empty(r, 304, extra);
	}
	/* If-Range: the range only while the file is the one the client
	 * has (its ETag, or exactly its Last-Modified). */
	if (range && ifr && strcmp(ifr, etag) && strcmp(ifr, lastmod))
		range = NULL;
	if (range) {
		switch (parse_range(range, size, &from, &to)) {
		case RANGE_BAD:
			return reply_416(r, size, "malformed Range header: "
					 "want bytes=FROM-TO, bytes=FROM- or "
					 "bytes=-COUNT");
		case RANGE_UNSATISFIABLE:
			return reply_416(r, size, "the Range lies outside the "
					 "file");
		case RANGE_ONE:
			partial = true;
			status = 206;
			snprintf(cr, sizeof(cr), "Content-Range: bytes %" PRIu64
				 "-%" PRIu64 "/%" PRIu64 "\r\n", from, to, size);
			break;
		case RANGE_NONE:
			break;
		}
	}
	if (!partial) {
		from = 0;
		to = size ? size - 1 : 0;
	}
	snprintf(extra, sizeof(extra),
		 "X-Content-Type-Options: nosniff\r\n"
		 "Content-Security-Policy: sandbox\r\n%s"
		 "Accept-Ranges: bytes\r\nETag: %s\r\nLast-Modified: %s\r\n"
		 "Cache-Control: private, no-cache\r\n%s",
		 ct->active ? "Content-Disposition: attachment\r\n" : "",
		 etag, lastmod, cr);
	if (http_reply_start(r, status, ct->type,
			     size ? to - from + 1 : 0, extra))
		return 0;
	if (size && strcmp(r->ri->request_method, "HEAD"))
		stream_range(r, fd, from, to);
	return 0;
}

/* ---- the route ------------------------------------------------------- */

int api_files_get(struct http_req *r)
{
	struct err e = ERR_INIT;
	const char *path = r->params[0] ? r->params[0] : "";
	struct stat st;
	int fd, rc;

	if (r->auth.kind == CALLER_GUEST)
		return http_fail(r, ERR_UNAUTHORIZED, MSG_AUTH);
	if (check_path(r, path, &e))
		return http_reply_error(r, &e);
	fd = open_below(r->srv, path, &st, &e);
	if (fd < 0)
		return http_reply_error(r, &e);
	rc = may_serve(r->srv, path, &st, &e);
	if (rc) {
		close(fd);
		return http_reply_error(r, &e);
	}
	if (S_ISDIR(st.st_mode))
		return list_dir(r, fd, path);   /* fd taken over */
	rc = serve_file(r, fd, path, &st);
	close(fd);
	return rc;
}
