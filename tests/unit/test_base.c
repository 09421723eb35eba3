/*
 * test_base.c - buf, err and util: the small pieces everything uses.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "util.h"
#include "testlib.h"

Test(buf, starts_empty_and_terminated)
{
	struct buf b = BUF_INIT;

	cr_assert_not_null(b.ptr);
	cr_assert_str_eq(b.ptr, "");
	cr_assert_eq(buf_puts(&b, "abc"), 0);
	cr_assert_eq(buf_printf(&b, "-%d-", 42), 0);
	cr_assert_str_eq(b.ptr, "abc-42-");
	cr_assert_eq(b.len, 7);
	buf_release(&b);
	cr_assert_str_eq(b.ptr, "");
}

Test(buf, cap_refuses_and_keeps_content)
{
	struct buf b;

	buf_init(&b, 8);
	cr_assert_eq(buf_puts(&b, "12345678"), 0);
	cr_assert_eq(buf_putc(&b, 'x'), ERR_TOO_LARGE);
	cr_assert_eq(buf_printf(&b, "%s", "y"), ERR_TOO_LARGE);
	cr_assert_str_eq(b.ptr, "12345678");
	buf_release(&b);
}

Test(buf, detach_hands_over)
{
	struct buf b = BUF_INIT;
	size_t len;
	char *p;

	buf_puts(&b, "hello");
	p = buf_detach(&b, &len);
	cr_assert_str_eq(p, "hello");
	cr_assert_eq(len, 5);
	cr_assert_eq(b.len, 0);
	free(p);
	p = buf_detach(&b, &len);
	cr_assert_str_eq(p, "");
	free(p);
}

Test(buf, read_file_respects_cap)
{
	char dir[256];
	struct buf b;
	struct err e = ERR_INIT;
	char *path;

	tl_mkdtemp(dir, sizeof(dir), "test");
	path = path_join(dir, "f");
	cr_assert_eq(fs_write_atomic(path, "0123456789", 10, 0644, &e), 0, "%s", e.msg);
	buf_init(&b, 5);
	cr_assert_eq(buf_read_file(&b, path, &e), ERR_TOO_LARGE);
	cr_assert(strstr(e.msg, "limit") != NULL, "%s", e.msg);
	cr_assert_eq(b.len, 0);
	buf_release(&b);
	buf_init(&b, 0);
	cr_assert_eq(buf_read_file(&b, path, &e), 0);
	cr_assert_str_eq(b.ptr, "0123456789");
	buf_release(&b);
	cr_assert_eq(buf_read_file(&b, dir, &e), ERR_INVALID);
	unlink(path);
	rmdir(dir);
	free(path);
}

Test(err, set_prefix_and_table)
{
	struct err e = ERR_INIT;

	cr_assert_eq(err_set_field(&e, ERR_INVALID, "mode", "value '%s'\nbad", "x"),
		     ERR_INVALID);
	cr_assert_str_eq(e.field, "mode");
	cr_assert_str_eq(e.msg, "value 'x' bad");
	err_prefix(&e, "%s:%d: ", "f.yaml", 3);
	cr_assert_str_eq(e.msg, "f.yaml:3: value 'x' bad");
	cr_assert_eq(err_http_status(ERR_PRECONDITION), 412);
	cr_assert_eq(err_http_status(ERR_NOT_FOUND), 404);
	cr_assert_str_eq(err_name(ERR_CONFLICT), "conflict");
	cr_assert_eq(err_set(NULL, ERR_IO, "x"), ERR_IO);
}

Test(util, ids_are_pocketbase_style)
{
	char a[ID_LEN + 1], b[ID_LEN + 1];

	util_new_id(a);
	util_new_id(b);
	cr_assert(util_valid_id(a));
	cr_assert_str_neq(a, b);
	cr_assert_not(util_valid_id("ABCDEFGHIJKLMNO"));
	cr_assert_not(util_valid_id("abc"));
	cr_assert_not(util_valid_id("abcdefghijklmnop"));
	cr_assert_not(util_valid_id("../../etc/passw"));
}

Test(util, record_ids_are_valid_unique_and_ordered_by_time)
{
	char a[ID_LEN + 1], b[ID_LEN + 1], c[ID_LEN + 1];
	struct timespec two_ms = { 0, 2 * 1000 * 1000 };

	util_new_record_id(a);
	util_new_record_id(b);
	cr_assert(util_valid_id(a), "%s", a);
	cr_assert(util_valid_id(b), "%s", b);
	cr_assert_str_neq(a, b);
	/* Same millisecond or the next: the time part is equal or later. */
	cr_assert(strncmp(a, b, 8) <= 0, "%s then %s", a, b);
	nanosleep(&two_ms, NULL);
	util_new_record_id(c);
	cr_assert(strcmp(a, c) < 0, "%s then %s", a, c);
	cr_assert(strcmp(b, c) < 0, "%s then %s", b, c);
}

/* Ids draw their randomness from a per-thread pool of getrandom() bytes:
 * across many refills they stay unique and every character stays equally
 * likely, and two threads never share a pool. */
#define MANY_IDS 20000

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void *ids_of_a_thread(void *arg)
{
	char (*ids)[ID_LEN + 1] = arg;
	int i;

	for (i = 0; i < 1000; i++)
		util_new_id(ids[i]);
	return NULL;
}

Test(util, ids_stay_unique_and_uniform_across_random_pool_refills)
{
	static char ids[MANY_IDS][ID_LEN + 1];
	static char two[2000][ID_LEN + 1];
	const char *alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
	long count[36] = { 0 }, expect = MANY_IDS * ID_LEN / 36;
	pthread_t t[2];
	int i, j;

	for (i = 0; i < MANY_IDS; i++) {
		util_new_id(ids[i]);
		cr_assert(util_valid_id(ids[i]), "%s", ids[i]);
		for (j = 0; j < ID_LEN; j++)
			count[strchr(alphabet, ids[i][j]) - alphabet]++;
	}
	/* 8,333 expected each; 10 % off is 9 standard deviations */
	for (i = 0; i < 36; i++)
		cr_assert(labs(count[i] - expect) < expect / 10,
			  "'%c' drawn %ld times, expected about %ld",
			  alphabet[i], count[i], expect);
	qsort(ids, MANY_IDS, sizeof(ids[0]), cmp_id);
	for (i = 1; i < MANY_IDS; i++)
		cr_assert_str_neq(ids[i - 1], ids[i]);
	for (i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, ids_of_a_thread,
					    two[1000 * i]),
			     0);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	qsort(two, 2000, sizeof(two[0]), cmp_id);
	for (i = 1; i < 2000; i++)
		cr_assert_str_neq(two[i - 1], two[i]);
}

Test(util, now_has_pocketbase_format)
{
	char t[TIME_LEN + 1];

	util_now(t);
	cr_assert_eq(strlen(t), TIME_LEN);
	cr_assert_eq(t[10], ' ');
	cr_assert_eq(t[19], '.');
	cr_assert_eq(t[23], 'Z');
}

Test(util, atomic_write_replaces_and_sets_mode)
{
	char dir[256];
	struct err e = ERR_INIT;
	struct buf b = BUF_INIT;
	struct stat st;
	char *path, *blocker;

	tl_mkdtemp(dir, sizeof(dir), "test");
	path = path_join(dir, "a/b/c.env");
	cr_assert_eq(fs_write_atomic(path, "one", 3, 0600, &e), 0, "%s", e.msg);
	cr_assert_eq(fs_write_atomic(path, "two!", 4, 0600, &e), 0, "%s", e.msg);
	cr_assert_eq(buf_read_file(&b, path, &e), 0);
	cr_assert_str_eq(b.ptr, "two!");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	/* A file where a directory should be: a clear error, nothing written. */
	blocker = path_join(dir, "x");
	cr_assert_eq(fs_write_atomic(blocker, "f", 1, 0644, &e), 0);
	free(path);
	path = path_join(dir, "x/y.env");
	cr_assert_neq(fs_write_atomic(path, "z", 1, 0600, &e), 0);
	cr_assert(strstr(e.msg, "not a directory") != NULL, "%s", e.msg);
	buf_release(&b);
	free(path);
	free(blocker);
	cr_assert_eq(system("true"), 0);
}

Test(util, path_components)
{
	cr_assert(path_component_ok("poco.md"));
	cr_assert_not(path_component_ok(".."));
	cr_assert_not(path_component_ok("."));
	cr_assert_not(path_component_ok("a/b"));
	cr_assert_not(path_component_ok(""));
	cr_assert_not(path_component_ok(NULL));
}
