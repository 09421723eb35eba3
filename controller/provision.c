/*
 * provision.c - proposal files to draft proposals (see provision.h).
 *
 * The directory is read with openat(O_NOFOLLOW | O_NONBLOCK) relative to
 * one directory descriptor, so a symlink or a FIFO planted in the
 * workspace (which the agent can write) is refused rather than followed or
 * blocked on. Frontmatter goes through libyaml (yamljson.h), with the
 * opening fence kept as an empty line so that YAML error positions are the
 * file's own.
 */
#include "provision.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "buf.h"
#include "ledger.h"
#include "util.h"
#include "yamljson.h"

#define PROPOSALS "proposals"
#define SHA_HEX_LEN 64

/* ---- parsing ---------------------------------------------------------------- */

void provision_file_release(struct provision_file *f)
{
	if (!f)
		return;
	free(f->name);
	free(f->description);
	free(f->body);
	memset(f, 0, sizeof(*f));
}

/*
 * The line starting at text[pos] (up to len): its length without the
 * newline into *n, and the start of the next line (len when none).
 */
static size_t line_at(const char *text, size_t len, size_t pos, size_t *n)
{
	const char *nl = memchr(text + pos, '\n', len - pos);
	size_t end = nl ? (size_t)(nl - text) : len;

	*n = end - pos;
	return nl ? end + 1 : len;
}

/* True when line[0..n) is fence ("---" or "...") with trailing blanks/CR. */
static bool is_fence(const char *line, size_t n, const char *fence)
{
	size_t k = strlen(fence);

	if (n < k || memcmp(line, fence, k))
		return false;
	for (; k < n; k++)
		if (line[k] != ' ' && line[k] != '\t' && line[k] != '\r')
			return false;
	return true;
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* A string member of the frontmatter: *out = NULL when absent or null. */
static int fm_string(const char *filename, json_t *fm, const char *key,
		     const char **out, struct err *e)
{
	json_t *v = json_object_get(fm, key);   /* borrowed */

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return err_set_field(e, ERR_INVALID, key,
				     "%s: frontmatter '%s' must be a string",
				     filename, key);
	*out = json_string_value(v);
	return 0;
}

int provision_parse(const char *filename, const char *text, size_t len,
		    struct provision_file *out, struct err *e)
{
	struct yaml_docs docs = { NULL, 0 };
	struct buf yaml = BUF_INIT;
	json_t *fm = NULL;
	const char *name = NULL, *desc = NULL, *body = text;
	size_t pos, next, n, start, body_len = len, flen;
	char *fallback = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (len > PROVISION_MAX_BYTES)
		return err_set(e, ERR_TOO_LARGE, "%s: %zu bytes, more than the "
			       "%zu a proposal may have", filename, len,
			       PROVISION_MAX_BYTES);
	if (memchr(text, '\0', len))
		return err_set(e, ERR_INVALID, "%s: contains a NUL byte",
			       filename);
	next = line_at(text, len, 0, &n);
	if (len && is_fence(text, n, "---")) {
		/* "\n" stands for the opening fence: positions stay the
		 * file's. */
		if (buf_putc(&yaml, '\n')) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		start = next;
		for (pos = next; pos < len; pos = next) {
			next = line_at(text, len, pos, &n);
			if (is_fence(text + pos, n, "---") ||
			    is_fence(text + pos, n, "..."))
				break;
		}
		if (pos >= len) {
			rc = err_set(e, ERR_INVALID, "%s: the frontmatter "
				     "opened on line 1 is never closed with "
				     "'---'", filename);
			goto out;
		}
		if (buf_add(&yaml, text + start, pos - start)) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		body = text + next;
		body_len = len - next;
		rc = yaml_parse_docs(filename, yaml.ptr, yaml.len, &docs, e);
		if (rc) {
			rc = ERR_INVALID;
			goto out;
		}
		fm = docs.n ? docs.docs[0].value : NULL;
		if (fm && !json_is_object(fm)) {
			rc = err_set(e, ERR_INVALID, "%s: the frontmatter is "
				     "not a YAML mapping of keys to values",
				     filename);
			goto out;
		}
		rc = fm_string(filename, fm, "name", &name, e);
		if (!rc)
			rc = fm_string(filename, fm, "description", &desc, e);
		if (rc)
			goto out;
	}
	if (!name) {
		flen = strlen(filename);
		fallback = dupn(filename, flen > 3 ? flen - 3 : flen);
		if (!fallback) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		name = fallback;
	}
	if (!ledger_name_ok(name)) {
		rc = err_set_field(e, ERR_INVALID, "name",
				   "%s: name '%.80s' is not a skill name (1-%d "
				   "characters of a-z and 0-9 in groups joined "
				   "by single '-'; no '/' or '..')", filename,
				   name, LEDGER_NAME_MAX);
		goto out;
	}
	out->name = strdup(name);
	out->description = strdup(desc ? desc : "");
	out->body = dupn(body, body_len);
	out->body_len = body_len;
	if (!out->name || !out->description || !out->body) {
		provision_file_release(out);
		rc = err_set(e, ERR_NOMEM, "out of memory");
	}
out:
	free(fallback);
	buf_release(&yaml);
	yaml_docs_release(&docs);
	return rc;
}

/* ---- reading the directory ---------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool md_name(const char *n)
{
	size_t k = strlen(n);

	return n[0] != '.' && k > 3 && !strcmp(n + k - 3, ".md");
}

/*
 * Read file name (relative to dfd) into b, refusing anything that is not
 * a regular file (symlinks included) and files over the limit before
 * reading them.
 */
static int read_entry(int dfd, const char *name, struct buf *b,
		      struct err *e)
{
	struct stat st;
	char chunk[65536];
	ssize_t got;
	int fd, rc = 0;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
		    O_NOCTTY);
	if (fd < 0)
		return err_set(e, errno == ELOOP ? ERR_INVALID : ERR_IO,
			       "%s: %s", name, errno == ELOOP ?
			       "a symlink, not a regular file" :
			       strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = err_set(e, ERR_IO, "%s: %s", name, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = err_set(e, ERR_INVALID, "%s: not a regular file", name);
		goto out;
	}
	if ((size_t)st.st_size > PROVISION_MAX_BYTES) {
		rc = err_set(e, ERR_TOO_LARGE, "%s: %lld bytes, more than the "
			     "%zu a proposal may have", name,
			     (long long)st.st_size, PROVISION_MAX_BYTES);
		goto out;
	}
	b->cap = PROVISION_MAX_BYTES + 1;
	for (;;) {
		got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = err_set(e, ERR_IO, "%s: %s", name, strerror(errno));
			goto out;
		}
		if (!got)
			break;
		if (buf_add(b, chunk, (size_t)got)) {
			rc = err_set(e, ERR_TOO_LARGE, "%s: more than the %zu "
				     "bytes a proposal may have", name,
				     PROVISION_MAX_BYTES);
			goto out;
		}
	}
out:
	close(fd);
	return rc;
}

static void sha256_hex(const char *data, size_t len, char out[SHA_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (EVP_Digest(data, len, h, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return;
	for (i = 0; i < n; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- syncing ----------------------------------------------------------------- */

static int report_add(json_t *files, const char *file, const char *name,
		      const char *action, const char *message)
{
	/* "s?" gives null for NULL; every string is copied. */
	json_t *item = json_pack("{s:s, s:s?, s:s, s:s}", "file", file, "name",
				 name, "action", action, "message", message);

	if (!item || json_array_append_new(files, item))
		return ERR_NOMEM;
	return 0;
}

static const char *dstr(const struct record *r, const char *f)
{
	const char *s = json_string_value(json_object_get(r->data, f));

	return s ? s : "";
}

static const char *lstr(json_t *labels, const char *k)
{
	const char *s = json_string_value(json_object_get(labels, k));

	return s ? s : "";
}

/*
 * Write one parsed file in its own transaction; *action and msg say what
 * happened.
 */
static int sync_one(struct store *s, const char *file,
		    const struct provision_file *pf, const char *sha,
		    const char **action, char *msg, size_t msglen,
		    struct err *e)
{
	struct store_txn *t = NULL;
	struct store_put p;
	struct record cur;
	json_t *data = NULL, *labels = NULL, *content = NULL;
	bool have, same_text, was_approved;
	int rc;

	record_init(&cur);
	*action = "unchanged";
	content = json_stringn(pf->body, pf->body_len);
	if (!content) {
		*action = "invalid";
		snprintf(msg, msglen, "%s: not valid UTF-8; nothing written",
			 file);
		return 0;
	}
	rc = store_begin(s, &t, e);
	if (rc)
		goto out;
	rc = store_txn_get_by_name(t, PROPOSALS, pf->name, &cur, e);
	have = rc == 0;
	if (rc && rc != ERR_NOT_FOUND)
		goto out;
	err_clear(e);
	rc = 0;
	if (have && !strcmp(lstr(cur.labels, PROVISION_LABEL_SHA), sha) &&
	    !strcmp(lstr(cur.labels, PROVISION_LABEL_FILE), file)) {
		snprintf(msg, msglen, "%s: proposal '%s' is in step", file,
			 pf->name);
		goto out;   /* nothing changed since the last sync */
	}
	labels = have ? json_deep_copy(cur.labels) : json_object();
	if (!labels ||
	    json_object_set_new(labels, PROVISION_LABEL_FILE, json_string(file)) ||
	    json_object_set_new(labels, PROVISION_LABEL_SHA, json_string(sha)))
		goto nomem;
	same_text = have && !strcmp(dstr(&cur, "description"), pf->description) &&
		    strlen(dstr(&cur, "content")) == pf->body_len &&
		    !memcmp(dstr(&cur, "content"), pf->body, pf->body_len);
	was_approved = have && !strcmp(dstr(&cur, "status"), "approved");
	if (same_text)
		data = json_object();
	else if (have)
		data = json_pack("{s:s, s:O, s:s}", "description",
				 pf->description, "content", content, "status",
				 "draft");
	else
		data = json_pack("{s:s, s:s, s:O, s:s, s:s}", "name", pf->name,
				 "description", pf->description, "content",
				 content, "authored_by", "human", "status",
				 "draft");
	if (!data)
		goto nomem;
	memset(&p, 0, sizeof(p));
	p.collection = PROPOSALS;
	p.id = have ? cur.id : NULL;
	p.name = pf->name;
	p.data = data;
	p.partial = have;
	p.labels = labels;
	p.mode = have ? STORE_UPDATE : STORE_CREATE;
	rc = store_txn_put(t, &p, NULL, NULL, e);
	if (rc) {
		err_prefix(e, "%s: ", file);
		goto out;
	}
	rc = store_commit(t, e);
	t = NULL;
	if (rc)
		goto out;
	if (!have) {
		*action = "created";
		snprintf(msg, msglen, "%s: created draft proposal '%s'", file,
			 pf->name);
	} else if (same_text) {
		snprintf(msg, msglen, "%s: proposal '%s' already holds this "
			 "text", file, pf->name);
	} else if (was_approved) {
		*action = "draft";
		snprintf(msg, msglen, "%s: approved proposal '%s' changed on "
			 "disk; it is a draft again and must be approved anew",
			 file, pf->name);
	} else {
		*action = "updated";
		snprintf(msg, msglen, "%s: updated draft proposal '%s'", file,
			 pf->name);
	}
	goto out;
nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	store_abort(t);
	record_release(&cur);
	json_decref(data);
	json_decref(labels);
	json_decref(content);
	return rc;
}

/* Proposals whose source file is not among the files seen: missing. */
struct missing_walk {
	json_t *seen;       /* file name -> true */
	json_t *files;      /* the report */
};

static int find_missing(const struct record *r, void *arg)
{
	struct missing_walk *w = arg;
	const char *file = lstr(r->labels, PROVISION_LABEL_FILE);
	char msg[600];

	if (!*file || json_object_get(w->seen, file))
		return 0;
	snprintf(msg, sizeof(msg), "%s: the source file of proposal '%s' is "
		 "gone; the proposal is kept", file, dstr(r, "name"));
	return report_add(w->files, file, dstr(r, "name"), "missing", msg);
}

/* The sorted names of the *.md entries of dir; *exists false when dir is
 * missing. */
static int list_dir(const char *root, const char *dir, int *dfd_out,
		    char ***names_out, size_t *n_out, bool *exists,
		    struct err *e)
{
	struct err we = ERR_INIT;
	char **names = NULL, **v;
	size_t n = 0, alloc = 0;
	struct dirent *de;
	DIR *d = NULL;
	int dfd, rc = 0;

	*dfd_out = -1;
	*names_out = NULL;
	*n_out = 0;
	*exists = false;
	if (root) {
		dfd = fs_open_dir_beneath(root, dir, false, &we);
		if (dfd == ERR_NOT_FOUND)
			return 0;
		if (dfd < 0)
			return err_set(e, ERR_IO, "cannot read proposals "
				       "directory '%s': %s", dir, we.msg);
	} else {
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0) {
			if (errno == ENOENT)
				return 0;
			return err_set(e, ERR_IO, "cannot read proposals "
				       "directory '%s': %s", dir,
				       strerror(errno));
		}
	}
	*exists = true;
	d = fdopendir(dup(dfd));
	if (!d) {
		rc = err_set(e, ERR_IO, "cannot read proposals directory '%s': "
			     "%s", dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (!md_name(de->d_name))
			continue;
		if (n >= PROVISION_MAX_FILES)
			break;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			v = realloc(names, alloc * sizeof(*names));
			if (!v)
				goto nomem;
			names = v;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto nomem;
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_str);
	goto out;
nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	if (d)
		closedir(d);
	if (rc) {
		while (n)
			free(names[--n]);
		free(names);
		close(dfd);
		return rc;
	}
	*dfd_out = dfd;
	*names_out = names;
	*n_out = n;
	return 0;
}

int provision_sync(struct store *s, const char *root, const char *dir,
		   json_t **report, struct err *e)
{
	struct provision_file pf;
	struct missing_walk w;
	struct buf b = BUF_INIT;
	struct err fe = ERR_INIT;
	json_t *rep = NULL, *files, *names_seen = NULL, *owner;
	char **names = NULL, sha[SHA_HEX_LEN + 1], msg[ERR_MSG_MAX + 200];
	const char *action;
	size_t n = 0, i;
	bool exists;
	int dfd = -1, rc;

	*report = NULL;
	memset(&pf, 0, sizeof(pf));
	memset(&w, 0, sizeof(w));
	rc = list_dir(root, dir, &dfd, &names, &n, &exists, e);
	if (rc)
		return rc;
	rep = json_pack("{s:s, s:b, s:[]}", "directory", dir, "exists", exists,
			"files");
	w.seen = json_object();
	names_seen = json_object();   /* proposal name -> file */
	if (!rep || !w.seen || !names_seen)
		goto nomem;
	files = json_object_get(rep, "files");
	w.files = files;
	for (i = 0; i < n; i++) {
		if (json_object_set_new(w.seen, names[i], json_true()))
			goto nomem;
		buf_release(&b);
		err_clear(&fe);
		rc = read_entry(dfd, names[i], &b, &fe);
		if (!rc)
			rc = provision_parse(names[i], b.ptr, b.len, &pf, &fe);
		if (rc == ERR_NOMEM)
			goto nomem;
		if (rc) {
			rc = report_add(files, names[i], NULL, "invalid", fe.msg);
			if (rc)
				goto nomem;
			continue;
		}
		owner = json_object_get(names_seen, pf.name);
		if (owner) {
			snprintf(msg, sizeof(msg), "%s: name '%s' is already "
				 "provided by '%s'; nothing written", names[i],
				 pf.name, json_string_value(owner));
			rc = report_add(files, names[i], pf.name, "invalid",
					msg);
			provision_file_release(&pf);
			if (rc)
				goto nomem;
			continue;
		}
		if (json_object_set_new(names_seen, pf.name,
					json_string(names[i])))
			goto nomem;
		sha256_hex(b.ptr, b.len, sha);
		rc = sync_one(s, names[i], &pf, sha, &action, msg, sizeof(msg),
			      e);
		if (!rc)
			rc = report_add(files, names[i], pf.name, action, msg) ?
			     err_set(e, ERR_NOMEM, "out of memory") : 0;
		provision_file_release(&pf);
		if (rc)
			goto out;
	}
	rc = store_list(s, PROPOSALS, NULL, find_missing, &w, e);
	if (rc == ERR_NOMEM)
		rc = err_set(e, ERR_NOMEM, "out of memory");
	if (rc)
		goto out;
	*report = rep;
	rep = NULL;
	goto out;
nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	provision_file_release(&pf);
	buf_release(&b);
	json_decref(rep);
	json_decref(w.seen);
	json_decref(names_seen);
	while (n)
		free(names[--n]);
	free(names);
	if (dfd >= 0)
		close(dfd);
	return rc;
}
