/*
 * testlib.c - the unit tests' shared kit (see testlib.h): temporary
 * directories and their removal, fixture files and JSON, the schema, a
 * store in a temporary directory and one-transaction puts. Each helper
 * asserts instead of returning an error.
 */
#include "testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "err.h"

void tl_mkdtemp(char *out, size_t n, const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	int len = snprintf(out, n, "%s/pocketctl-%s-XXXXXX",
			   tmp && *tmp ? tmp : "/tmp", tag);

	cr_assert(len > 0 && (size_t)len < n, "temporary path too long");
	cr_assert_not_null(mkdtemp(out), "mkdtemp %s: %s", out,
			   strerror(errno));
}

char *tl_tmpdir(const char *tag)
{
	char dir[256];
	char *out;

	tl_mkdtemp(dir, sizeof(dir), tag);
	out = strdup(dir);
	cr_assert_not_null(out);
	return out;
}

/* Before descending: open up a directory a test made unreadable. */
static int open_up(const char *path, const struct stat *sb, int flag,
		   struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_D || flag == FTW_DNR)
		chmod(path, (sb->st_mode & 07777) | 0700);
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tl_rmtree(const char *dir)
{
	if (!dir || !*dir)
		return;
	chmod(dir, 0700);
	nftw(dir, open_up, 16, FTW_PHYS);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tl_unlink_in(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

void tl_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

void tl_write(const char *dir, const char *rel, const char *text)
{
	char path[4096], *slash;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	tl_write_file(path, text);
}

char *tl_quotes(const char *text)
{
	char *t = strdup(text), *p;

	cr_assert_not_null(t);
	for (p = t; *p; p++)
		if (*p == '\'')
			*p = '"';
	return t;
}

json_t *tl_json(const char *text)
{
	json_error_t jerr;
	char *t = tl_quotes(text);
	json_t *j = json_loads(t, JSON_DECODE_ANY, &jerr);

	cr_assert_not_null(j, "bad test JSON %s: %s", text, jerr.text);
	free(t);
	return j;
}

struct schema *tl_schema(void)
{
	struct schema *s = NULL;
	struct err e = ERR_INIT;

	cr_assert_eq(schema_load_default(&s, &e), 0, "schema: %s", e.msg);
	return s;
}

struct schema *tl_schema_text(const char *text)
{
	struct err e = ERR_INIT;
	struct schema *s = NULL;
	char *t = tl_quotes(text);
	int rc = schema_load(&s, t, strlen(t), &e);

	cr_assert_eq(rc, 0, "test schema: %s", e.msg);
	free(t);
	return s;
}

struct store *tl_store_open(const struct schema *sc, const char *dir,
			    int64_t keep)
{
	struct store_options o;
	struct err e = ERR_INIT;
	struct store *s = NULL;

	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.changelog_keep = keep;
	cr_assert_eq(store_open(&s, sc, &o, &e), 0, "store_open: %s", e.msg);
	return s;
}

void tl_store_setup(char *dir, size_t n, const char *tag, const char *schema,
		    int64_t keep, struct schema **sc, struct store **s)
{
	tl_mkdtemp(dir, n, tag);
	*sc = schema ? tl_schema_text(schema) : tl_schema();
	*s = tl_store_open(*sc, dir, keep);
}

void tl_store_teardown(const char *dir, struct schema **sc,
		       struct store **s)
{
	store_close(*s);
	*s = NULL;
	schema_free(*sc);
	*sc = NULL;
	tl_rmtree(dir);
}

static void put(struct store *s, const char *coll, json_t *data,
		enum store_put_mode mode, bool partial, const char *id,
		char *id_out)
{
	struct err e = ERR_INIT;
	struct store_txn *t = NULL;
	struct store_put p;
	struct record r;

	memset(&p, 0, sizeof(p));
	p.collection = coll;
	p.data = data;
	p.mode = mode;
	p.partial = partial;
	if (id && *id)
		p.id = id;
	record_init(&r);
	cr_assert_eq(store_begin(s, &t, &e), 0, "begin: %s", e.msg);
	cr_assert_eq(store_txn_put(t, &p, &r, NULL, &e), 0, "put %s: %s",
		     coll, e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "commit: %s", e.msg);
	if (id_out)
		memcpy(id_out, r.id, ID_LEN + 1);
	record_release(&r);
}

void tl_put(struct store *s, const char *coll, json_t *data,
	    enum store_put_mode mode, const char *id, char *id_out)
{
	put(s, coll, data, mode, false, id, id_out);
}

void tl_put_new(struct store *s, const char *coll, json_t *data,
		enum store_put_mode mode, const char *id, char *id_out)
{
	cr_assert_not_null(data, "no fixture data for %s", coll);
	tl_put(s, coll, data, mode, id, id_out);
	json_decref(data);
}

void tl_put_text(struct store *s, const char *coll, const char *json_text,
		 enum store_put_mode mode, const char *id, char *id_out)
{
	json_t *data = tl_json(json_text);

	tl_put(s, coll, data, mode, id, id_out);
	json_decref(data);
}

void tl_create(struct store *s, const char *coll, const char *json_text,
	       char *id_out)
{
	tl_put_text(s, coll, json_text, STORE_CREATE, NULL, id_out);
}

void tl_upsert(struct store *s, const char *coll, const char *json_text,
	       char *id)
{
	tl_put_text(s, coll, json_text, STORE_UPSERT, id, id);
}

void tl_patch(struct store *s, const char *coll, const char *id,
	      const char *json_text)
{
	json_t *data = tl_json(json_text);

	put(s, coll, data, STORE_UPDATE, true, id, NULL);
	json_decref(data);
}

int tl_tcp_listener(int *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(l, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(l, 64), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return l;
}
