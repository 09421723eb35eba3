/*
 * test_build_id.c - util_build_id(): the running binary's GNU build id,
 * as readelf(1) reads it from the file.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

Test(build_id, matches_readelf)
{
	char line[512], want[160] = "", cmd[64];
	FILE *f;

	/* /proc/self in the shell would be the shell: name our own file */
	snprintf(cmd, sizeof(cmd), "readelf -n /proc/%d/exe", (int)getpid());
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "Build ID: ");

		if (p)
			sscanf(p + 10, "%159s", want);
	}
	pclose(f);
	cr_assert(want[0], "readelf found no build id");
	cr_expect_str_eq(util_build_id(), want);
	/* the same string every time */
	cr_expect_eq(util_build_id(), util_build_id());
}
