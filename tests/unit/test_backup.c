/*
 * test_backup.c - unit tests for the store's backups (store_backup.c): a
 * backup taken while another thread writes holds every write committed
 * before it and opens as a store at its revision; bad names write
 * nothing; the check refuses garbage, foreign and newer files; a restore
 * installs the backup and keeps the replaced store aside; the listing.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

static const char bk_schema_json[] =
	"{'version': 1, 'collections': ["
	" {'name': 'items', 'id': 'pc_items', 'kind': 'Item',"
	"  'nameField': 'name',"
	"  'fields': [{'name': 'name', 'type': 'text', 'required': true},"
	"              {'name': 'n', 'type': 'number'}],"
	"  'rules': {'list': null, 'view': null, 'create': null,"
	"            'update': null, 'delete': null}}]}";

static char bk_dir[256];
static struct schema *bk_sch;
static struct store *bk;

static void bk_setup(void)
{
	tl_store_setup(bk_dir, sizeof(bk_dir), "backup", bk_schema_json, 0,
		       &bk_sch, &bk);
}

static void bk_teardown(void)
{
	tl_store_teardown(bk_dir, &bk_sch, &bk);
}

TestSuite(backup, .init = bk_setup, .fini = bk_teardown);

static void put_item(struct store *s, int i)
{
	char text[128];

	snprintf(text, sizeof(text), "{'name': 'item-%d', 'n': %d}", i, i);
	tl_create(s, "items", text, NULL);
}

struct writer {
	struct store *s;
	atomic_int done;         /* items committed so far */
	atomic_bool stop;
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	int i = 0;

	while (!atomic_load(&w->stop)) {
		put_item(w->s, 1000 + i++);
		atomic_store(&w->done, i);
	}
	return NULL;
}

/* The records of items in the store of directory dir. */
static int64_t count_in(const char *dir)
{
	struct store *s = tl_store_open(bk_sch, dir, 0);
	struct err e = ERR_INIT;
	int64_t n = -1;

	cr_assert_eq(store_count(s, "items", NULL, &n, &e), 0, "%s", e.msg);
	store_close(s);
	return n;
}

Test(backup, online_copy_holds_every_earlier_commit)
{
	struct store_backup_opts o = { NULL, NULL, NULL };
	struct store_backup_info info = { NULL, 0, 0 };
	struct writer w = { bk, 0, false };
	struct err e = ERR_INIT;
	char *bdir = path_join(bk_dir, "b"), *rdir = path_join(bk_dir, "r");
	char *replaced = NULL;
	pthread_t th;
	int before, i;

	for (i = 0; i < 200; i++)
		put_item(bk, i);
	cr_assert_eq(pthread_create(&th, NULL, write_loop, &w), 0);
	while (atomic_load(&w.done) < 20)
		usleep(1000);
	before = atomic_load(&w.done);
	o.dir = bdir;
	cr_assert_eq(store_backup(bk, &o, &info, &e), 0, "%s", e.msg);
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);

	cr_assert_geq(info.revision, 200 + before);
	cr_assert_gt(info.size, 0);
	cr_assert(strstr(info.path, "/b/pocket-"), "%s", info.path);
	cr_assert(strstr(info.path, ".db"));
	/* It opens as a store holding exactly the records of its revision. */
	cr_assert_eq(store_restore(bk_sch, rdir, info.path, &replaced, &e), 0,
		     "%s", e.msg);
	cr_assert_null(replaced);   /* rdir had no store */
	cr_assert_eq(count_in(rdir), info.revision);
	store_backup_info_release(&info);
	free(bdir);
	free(rdir);
}

Test(backup, bad_file_name_writes_nothing)
{
	struct store_backup_opts o = { bk_dir, "../x.db", NULL };
	struct store_backup_info info = { NULL, 0, 0 };
	struct err e = ERR_INIT;

	cr_assert_eq(store_backup(bk, &o, &info, &e), ERR_INVALID);
	cr_assert(strstr(e.msg, "'../x.db'"), "%s", e.msg);
	cr_assert_null(info.path);
}

Test(backup, check_refuses_garbage_foreign_and_newer)
{
	struct store_backup_opts o = { bk_dir, "good.db", NULL };
	struct store_backup_info info = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	char *garbage = path_join(bk_dir, "garbage.db");
	char *foreign = path_join(bk_dir, "foreign.db");
	char *good = path_join(bk_dir, "good.db");
	sqlite3 *db = NULL;

	put_item(bk, 1);
	cr_assert_eq(store_backup(bk, &o, &info, &e), 0, "%s", e.msg);
	store_backup_info_release(&info);
	cr_assert_eq(store_backup_check(bk_sch, good, &info, &e), 0, "%s",
		     e.msg);
	cr_assert_eq(info.revision, 1);
	store_backup_info_release(&info);

	tl_write_file(garbage, "not a database, just some words\n");
	cr_assert_eq(store_backup_check(bk_sch, garbage, &info, &e),
		     ERR_INVALID);
	cr_assert(strstr(e.msg, "is not a sound store database"), "%s", e.msg);

	cr_assert_eq(sqlite3_open(foreign, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(store_backup_check(bk_sch, foreign, &info, &e),
		     ERR_INVALID);
	cr_assert(strstr(e.msg, "is not a pocketctl store"), "%s", e.msg);

	/* A store written by a newer schema. */
	cr_assert_eq(sqlite3_open(good, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "UPDATE meta SET value = 99 "
				  "WHERE key = 'schema_version'",
				  NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(store_backup_check(bk_sch, good, &info, &e), ERR_INVALID);
	cr_assert(strstr(e.msg, "schema version 99, newer"), "%s", e.msg);
	free(garbage);
	free(foreign);
	free(good);
}

Test(backup, restore_keeps_the_replaced_store_aside)
{
	struct store_backup_opts o = { bk_dir, "one.db", NULL };
	struct store_backup_info info = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	char *from = path_join(bk_dir, "one.db"), *replaced = NULL;
	struct schema *sc = bk_sch;
	struct stat st;

	put_item(bk, 1);
	cr_assert_eq(store_backup(bk, &o, &info, &e), 0, "%s", e.msg);
	put_item(bk, 2);
	put_item(bk, 3);
	store_close(bk);
	bk = NULL;
	cr_assert_eq(store_restore(sc, bk_dir, from, &replaced, &e), 0, "%s",
		     e.msg);
	cr_assert(replaced);
	cr_assert(strstr(replaced, "/pocket.db.replaced-"), "%s", replaced);
	cr_assert_eq(stat(replaced, &st), 0);
	cr_assert_eq(count_in(bk_dir), 1);
	/* The store aside is whole by itself: three records. */
	{
		char *side = path_join(bk_dir, "side");
		char *db = path_join(side, "pocket.db");

		cr_assert_eq(fs_mkdirs(side, &e), 0);
		cr_assert_eq(link(replaced, db), 0);
		cr_assert_eq(count_in(side), 3);
		free(side);
		free(db);
	}
	store_backup_info_release(&info);
	free(replaced);
	free(from);
}

Test(backup, list_is_by_name_and_skips_others)
{
	struct err e = ERR_INIT;
	char *dir = path_join(bk_dir, "list");
	json_t *items = NULL;

	cr_assert_eq(store_backup_list(dir, &items, &e), 0, "%s", e.msg);
	cr_assert_eq(json_array_size(items), 0);   /* a missing dir */
	json_decref(items);
	tl_write(bk_dir, "list/pocket-2.db", "x");
	tl_write(bk_dir, "list/pocket-1.db", "xy");
	tl_write(bk_dir, "list/.pocket-tmp-abc", "x");
	tl_write(bk_dir, "list/notes.txt", "x");
	cr_assert_eq(store_backup_list(dir, &items, &e), 0, "%s", e.msg);
	cr_assert_eq(json_array_size(items), 2);
	cr_assert_str_eq(json_string_value(json_object_get(
		json_array_get(items, 0), "key")), "pocket-1.db");
	cr_assert_eq(json_integer_value(json_object_get(
		json_array_get(items, 0), "size")), 2);
	json_decref(items);
	free(dir);
}

Test(backup, stale_temporary_files_are_removed)
{
	struct store_backup_opts o = { bk_dir, "b.db", NULL };
	struct store_backup_info info = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	char *old = path_join(bk_dir, ".pocket-tmp-old123");
	char *fresh = path_join(bk_dir, ".pocket-tmp-new123");
	struct timespec t[2] = { { 0, 0 }, { 0, 0 } };
	struct stat st;

	tl_write_file(old, "left by a killed backup");
	tl_write_file(fresh, "a backup under way");
	t[0].tv_sec = t[1].tv_sec = time(NULL) - 2 * 3600;
	cr_assert_eq(utimensat(AT_FDCWD, old, t, 0), 0);
	cr_assert_eq(store_backup(bk, &o, &info, &e), 0, "%s", e.msg);
	cr_assert_neq(stat(old, &st), 0, "a stale temporary file is left");
	cr_assert_eq(stat(fresh, &st), 0, "a fresh one was removed");
	store_backup_info_release(&info);
	free(old);
	free(fresh);
}
