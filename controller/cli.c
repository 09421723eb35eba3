/*
 * cli.c - helpers shared by the pocketctl subcommands (see cli.h).
 */
#include "cli.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

int cli_open_store(const struct cli *cli, bool read_only, struct store **out,
		   struct err *e)
{
	struct store_options o;

	memset(&o, 0, sizeof(o));
	o.dir = cli->data_dir;
	o.read_only = read_only;
	return store_open(out, cli->schema, &o, e);
}

int cli_fail(const struct err *e)
{
	fprintf(stderr, "pocketctl: %s\n",
		e && e->msg[0] ? e->msg : "unknown error");
	return CLI_ERROR;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pocketctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun 'pocketctl help' for usage.\n");
	return CLI_ERROR;
}

int cli_local_only(const struct cli *cli, const char *cmd)
{
	if (!cli->server)
		return 0;
	fprintf(stderr,
		"pocketctl %s: --server is not supported yet; this build works on the data directory (--data)\n",
		cmd);
	return CLI_ERROR;
}

void cli_kind_lower(const struct collection *c, char *out, size_t n)
{
	size_t i;

	for (i = 0; c->kind[i] && i + 1 < n; i++)
		out[i] = (char)tolower((unsigned char)c->kind[i]);
	out[i] = '\0';
}
