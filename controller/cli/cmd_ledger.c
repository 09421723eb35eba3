/*
 * cmd_ledger.c - `pocketctl ledger verify [-o text|json]`: recompute the
 * SOP ledger's hash chain (ledger.h) and name the first entry that does
 * not match, on the data directory (offline, read-only) or through a
 * running server (GET /api/v1/ledger/verify); both give the same report.
 *
 * Exit codes: 0 the chain verifies, 1 it does not (tampered), 2 error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ledger.h"

#define LEDGER_USAGE "usage: pocketctl ledger verify [-o text|json]"

static void print_text(json_t *rep)
{
	json_t *bad = json_object_get(rep, "firstBad");
	json_t *v = json_object_get(bad, "version");
	json_int_t n = json_integer_value(json_object_get(rep, "entries"));
	char version[32];

	if (json_is_true(json_object_get(rep, "ok"))) {
		if (!n)
			printf("ledger ok: no sealed entries\n");
		else
			printf("ledger ok: %" JSON_INTEGER_FORMAT " entries, "
			       "head %s\n", n,
			       cli_jstr(rep, "head"));
		return;
	}
	if (json_is_integer(v))
		snprintf(version, sizeof(version), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
	else
		snprintf(version, sizeof(version), "?");
	printf("ledger TAMPERED: entry %" JSON_INTEGER_FORMAT " of %"
	       JSON_INTEGER_FORMAT ", sop '%s' version %s (id %s): %s\n",
	       json_integer_value(json_object_get(bad, "position")), n,
	       cli_jstr(bad, "name"), version, cli_jstr(bad, "id"),
	       cli_jstr(bad, "reason"));
}

static int verify(struct cli *cli, bool as_json)
{
	struct err e = ERR_INIT;
	json_t *rep = NULL;
	char *text;
	int rc;

	rc = cli_connect(cli, &e);
	if (!rc)
		rc = cli->conn.store ? ledger_verify(cli->conn.store, &rep, &e) :
		     cli_http(&cli->conn, "GET", "/api/v1/ledger/verify", NULL,
			      NULL, 0, &rep, &e);
	if (!rc && (!json_is_object(rep) ||
		    !json_is_boolean(json_object_get(rep, "ok"))))
		rc = err_set(&e, ERR_INVALID, "the ledger report is not an "
			     "object with a boolean \"ok\"");
	if (rc) {
		rc = cli_fail(&e);
		goto out;
	}
	if (as_json) {
		text = json_dumps(rep, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (text)
			printf("%s\n", text);
		free(text);
	} else {
		print_text(rep);
	}
	rc = json_is_true(json_object_get(rep, "ok")) ? CLI_OK : CLI_DIFF;
out:
	json_decref(rep);
	return rc;
}

int cmd_ledger(struct cli *cli, int argc, char **argv)
{
	int i = cli_operands("ledger", argc, argv);

	if (i < 0)
		return CLI_ERROR;
	if (argc - i != 1 || strcmp(argv[i], "verify"))
		return cli_usage("ledger", LEDGER_USAGE);
	return verify(cli, !strcmp(cli->output, "json"));
}
