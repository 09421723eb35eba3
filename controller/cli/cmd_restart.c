/*
 * cmd_restart.c - `pocketctl restart NAME`: ask the running server to
 * restart a managed container (POST /api/v1/containers/NAME/restart).
 * Only the server drives the container engine, so there is no offline
 * form; the restart itself happens in the background and shows in the
 * container's status (`pocketctl get container NAME -o json`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_restart(struct cli *cli, int argc, char **argv)
{
	struct err e = ERR_INIT;
	json_t *reply = NULL;
	char *esc = NULL, *path = NULL;
	int rc = CLI_ERROR;

	if (argc != 2 || !argv[1][0])
		return cli_usage("restart", "usage: pocketctl restart NAME");
	if (cli->offline)
		return cli_usage("restart",
				 "restart needs a running server (pocketctl serve); --offline cannot restart containers");
	if (cli_connect(cli, &e))
		goto fail;
	if (!cli->conn.http) {
		err_set(&e, ERR_UNAVAILABLE,
			"no server is running on data directory '%s': restart needs "
			"pocketctl serve (or --server URL)", cli->data_dir);
		goto fail;
	}
	esc = client_escape(cli->conn.http, argv[1]);
	if (!esc || asprintf(&path, "/api/v1/containers/%s/restart", esc) < 0) {
		path = NULL;
		err_set(&e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (cli_http(&cli->conn, "POST", path, NULL, NULL, 0, &reply, &e))
		goto fail;
	printf("container/%s restart requested (request %s)\n", argv[1],
	       cli_jstr(json_object_get(reply, "request"), "id"));
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(&e);
out:
	json_decref(reply);
	free(path);
	free(esc);
	return rc;
}
