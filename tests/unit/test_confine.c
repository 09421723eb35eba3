/*
 * test_confine.c - the confined file walks of util.h (fs_*_beneath): files
 * are created, read and removed below a root through real directories,
 * and a symlinked directory, a ".." or a file in the way is refused with
 * the component named and nothing touched where a link points.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "testlib.h"
#include "util.h"

static char cf_base[PATH_MAX], cf_root[PATH_MAX + 16], cf_out[PATH_MAX + 16];

static void cf_setup(void)
{
	tl_mkdtemp(cf_base, sizeof(cf_base), "confine");
	snprintf(cf_root, sizeof(cf_root), "%s/root", cf_base);
	snprintf(cf_out, sizeof(cf_out), "%s/outside", cf_base);
	cr_assert_eq(mkdir(cf_root, 0755), 0);
	cr_assert_eq(mkdir(cf_out, 0755), 0);
}

static void cf_teardown(void)
{
	tl_rmtree(cf_base);
}

/* root/rel as a static string (one at a time). */
static const char *in_root(const char *rel)
{
	static char p[PATH_MAX * 2];

	snprintf(p, sizeof(p), "%s/%s", cf_root, rel);
	return p;
}

static bool outside_empty(void)
{
	char cmd[PATH_MAX + 64];
	FILE *f;
	int c;

	snprintf(cmd, sizeof(cmd), "find '%s' -mindepth 1", cf_out);
	f = popen(cmd, "r");
	cr_assert(f);
	c = fgetc(f);
	pclose(f);
	return c == EOF;
}

TestSuite(confine, .init = cf_setup, .fini = cf_teardown);

Test(confine, write_creates_dirs_read_back_and_unlink)
{
	struct err e = ERR_INIT;
	struct buf b = BUF_INIT;
	struct stat st;

	cr_assert_eq(fs_write_beneath(cf_root, in_root("a/b/c/f.txt"), "hello",
				      5, 0600, &e), 0, "%s", e.msg);
	cr_assert_eq(fs_read_beneath(cf_root, in_root("a/b/c/f.txt"), &b, &st,
				     &e), 1, "%s", e.msg);
	cr_assert_eq(b.len, 5);
	cr_assert_str_eq(b.ptr, "hello");
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(fs_unlink_beneath(cf_root, in_root("a/b/c/f.txt"), &e), 0,
		     "%s", e.msg);
	buf_reset(&b);
	cr_assert_eq(fs_read_beneath(cf_root, in_root("a/b/c/f.txt"), &b, &st,
				     &e), 0);
	/* a missing directory on the way is "missing", not an error */
	cr_assert_eq(fs_read_beneath(cf_root, in_root("no/such/f"), &b, &st,
				     &e), 0);
	cr_assert_eq(fs_unlink_beneath(cf_root, in_root("no/such/f"), &e), 0);
	buf_release(&b);
}

Test(confine, the_root_is_created_when_missing)
{
	struct err e = ERR_INIT;
	char root[PATH_MAX + 16], path[PATH_MAX + 48];

	snprintf(root, sizeof(root), "%s/new/root", cf_base);
	snprintf(path, sizeof(path), "%s/x/f", root);
	cr_assert_eq(fs_write_beneath(root, path, "1", 1, 0644, &e), 0, "%s",
		     e.msg);
	cr_assert_eq(access(path, F_OK), 0);
}

Test(confine, symlinked_directory_on_the_way_is_refused_and_named)
{
	struct err e = ERR_INIT;
	struct buf b = BUF_INIT;
	struct stat st;
	const char *const cases[] = { "ws", "ws/.opencode" };
	char want[PATH_MAX * 2];
	size_t i;

	for (i = 0; i < 2; i++) {
		tl_rmtree(cf_root);
		cr_assert_eq(mkdir(cf_root, 0755), 0);
		if (i == 1)
			cr_assert_eq(mkdir(in_root("ws"), 0755), 0);
		cr_assert_eq(symlink(cf_out, in_root(cases[i])), 0);
		snprintf(want, sizeof(want), "'%s' is a symbolic link",
			 in_root(cases[i]));
		err_clear(&e);
		cr_assert_eq(fs_write_beneath(cf_root,
					      in_root("ws/.opencode/agents/poco.md"),
					      "x", 1, 0644, &e), ERR_IO);
		cr_assert(strstr(e.msg, want), "%s", e.msg);
		err_clear(&e);
		cr_assert_eq(fs_read_beneath(cf_root,
					     in_root("ws/.opencode/agents/poco.md"),
					     &b, &st, &e), ERR_IO);
		cr_assert(strstr(e.msg, want), "%s", e.msg);
		err_clear(&e);
		cr_assert_lt(fs_open_dir_beneath(cf_root,
						 in_root("ws/.opencode/agents"),
						 true, &e), 0);
		cr_assert(strstr(e.msg, want), "%s", e.msg);
		cr_assert(outside_empty(), "something was created outside");
	}
	buf_release(&b);
}

Test(confine, unlink_does_not_follow_a_symlinked_directory)
{
	struct err e = ERR_INIT;
	char victim[PATH_MAX + 48];

	snprintf(victim, sizeof(victim), "%s/mcp.env", cf_out);
	tl_write_file(victim, "secret");
	cr_assert_eq(symlink(cf_out, in_root("mcp_config")), 0);
	cr_assert_eq(fs_unlink_beneath(cf_root, in_root("mcp_config/mcp.env"),
				       &e), ERR_IO);
	cr_assert(strstr(e.msg, "symbolic link"), "%s", e.msg);
	cr_assert_eq(access(victim, F_OK), 0);
}

Test(confine, a_symlink_as_the_file_itself_is_replaced_not_followed)
{
	struct err e = ERR_INIT;
	char victim[PATH_MAX + 48];
	struct buf b = BUF_INIT;
	struct stat st;

	snprintf(victim, sizeof(victim), "%s/target", cf_out);
	tl_write_file(victim, "keep");
	cr_assert_eq(symlink(victim, in_root("f")), 0);
	cr_assert_eq(fs_read_beneath(cf_root, in_root("f"), &b, &st, &e), 1);
	cr_assert(S_ISLNK(st.st_mode));
	cr_assert_eq(b.len, 0, "the link was read through");
	cr_assert_eq(fs_write_beneath(cf_root, in_root("f"), "new", 3, 0644,
				      &e), 0, "%s", e.msg);
	cr_assert_eq(lstat(in_root("f"), &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	buf_reset(&b);
	cr_assert_eq(buf_read_file(&b, victim, &e), 0);
	cr_assert_str_eq(b.ptr, "keep");
	buf_release(&b);
}

Test(confine, dotdot_and_files_in_the_way_are_refused)
{
	struct err e = ERR_INIT;
	char esc[PATH_MAX * 2];

	snprintf(esc, sizeof(esc), "%s/../outside/f", cf_root);
	cr_assert_eq(fs_write_beneath(cf_root, esc, "x", 1, 0644, &e), ERR_IO);
	cr_assert(strstr(e.msg, "'..'"), "%s", e.msg);
	cr_assert(outside_empty());
	tl_write_file(in_root("mcp_config"), "a file");
	err_clear(&e);
	cr_assert_eq(fs_write_beneath(cf_root, in_root("mcp_config/x"), "x", 1,
				      0644, &e), ERR_IO);
	cr_assert(strstr(e.msg, "mcp_config' exists and is not a directory"),
		  "%s", e.msg);
}

Test(confine, paths_outside_the_root_are_walked_from_slash_without_links)
{
	struct err e = ERR_INIT;
	char path[PATH_MAX + 48], link[PATH_MAX + 48];

	/* not under root: walked from "/", still refusing links */
	snprintf(path, sizeof(path), "%s/sub/f", cf_out);
	cr_assert_eq(fs_write_beneath(cf_root, path, "x", 1, 0644, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(access(path, F_OK), 0);
	snprintf(link, sizeof(link), "%s/link", cf_base);
	cr_assert_eq(symlink(cf_out, link), 0);
	snprintf(path, sizeof(path), "%s/link/g", cf_base);
	cr_assert_eq(fs_write_beneath(cf_root, path, "x", 1, 0644, &e), ERR_IO);
	cr_assert(strstr(e.msg, "symbolic link"), "%s", e.msg);
}
