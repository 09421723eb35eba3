/*
 * test_openat_beneath.c - fs_openat_beneath() (util.h), the one openat2
 * call behind both the rendered-file confinement (no symlinks at all) and
 * the artifacts endpoint (symlinks that stay below the directory): what
 * each mode opens and what it refuses, with the errno it gives.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testlib.h"
#include "util.h"

struct ob_case {
	const char *rel;
	bool follow;
	int want;          /* 0: opens; else -errno */
};

static const struct ob_case ob_cases[] = {
	{ "in/file.txt", false, 0 },
	{ "in/file.txt", true, 0 },
	{ "link-in", true, 0 },               /* -> in/file.txt */
	{ "link-in", false, -ELOOP },
	{ "link-out", true, -EXDEV },         /* -> ../outside.txt */
	{ "link-abs", true, -EXDEV },         /* absolute target */
	{ "../outside.txt", true, -EXDEV },
	{ "in/../in/file.txt", true, 0 },     /* stays below: the caller
	                                       * refuses ".." by text */
	{ "missing", true, -ENOENT },
};

Test(openat_beneath, modes)
{
	char *top = tl_tmpdir("openat"), path[512];
	int dfd, fd;
	size_t i;

	tl_write(top, "ws/in/file.txt", "x");
	tl_write(top, "outside.txt", "secret");
	snprintf(path, sizeof(path), "%s/ws/link-in", top);
	cr_assert_eq(symlink("in/file.txt", path), 0);
	snprintf(path, sizeof(path), "%s/ws/link-out", top);
	cr_assert_eq(symlink("../outside.txt", path), 0);
	snprintf(path, sizeof(path), "%s/ws/link-abs", top);
	cr_assert_eq(symlink("/etc/hostname", path), 0);
	snprintf(path, sizeof(path), "%s/ws", top);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dfd, 0);
	for (i = 0; i < sizeof(ob_cases) / sizeof(ob_cases[0]); i++) {
		const struct ob_case *c = &ob_cases[i];

		fd = fs_openat_beneath(dfd, c->rel, O_RDONLY | O_CLOEXEC,
				       c->follow);
		if (fd >= 0)
			close(fd);
		cr_expect_eq(fd >= 0 ? 0 : fd, c->want, "%s (follow %d): %d",
			     c->rel, c->follow, fd);
	}
	close(dfd);
	tl_rmtree(top);
	free(top);
}
