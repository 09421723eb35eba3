/*
 * cmd_serve.c - `pocketctl serve`: parse the options into a struct
 * server_options and run the server (server.c) in the foreground. It is
 * the server's command-line face: the command table row (cli/main.c) and
 * cmd_serve()'s declaration live in cli/cli.h, the only CLI header the
 * server layer may include, so that the CLI itself includes no server/
 * header.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "log.h"
#include "netguard.h"
#include "server.h"

/* Parse a whole decimal number in [min, max]. */
static int parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * When argv[*i] is option name ("--name VALUE" or "--name=VALUE"), point
 * *val at its value (advancing *i past a separate value; "" when the value
 * is missing) and return true.
 */
static bool take(int argc, char **argv, int *i, const char *name,
		 const char **val)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0 || (a[n] != '=' && a[n] != '\0'))
		return false;
	if (a[n] == '=')
		*val = a + n + 1;
	else if (*i + 1 < argc)
		*val = argv[++*i];
	else
		*val = "";
	return true;
}

struct num_opt {
	const char *name;
	long min, max;
};

static const struct num_opt num_opts[] = {
	{ "--workers", 1, 4096 },
	{ "--max-streams", 0, 16384 },
	{ "--max-body", 1024, (long)1 << 30 },
	{ "--max-apply-body", 1024, (long)1 << 30 },
	{ "--token-ttl", 1, (long)10 * 365 * 86400 },
	{ "--bcrypt-cost", AUTH_BCRYPT_COST_MIN, AUTH_BCRYPT_COST_MAX },
	{ "--backup-keep", 1, 100000 },
	{ "--max-conns-per-ip", 0, 65536 },
	{ "--header-timeout", 1, 3600 },
	{ "--body-timeout", 1, 86400 },
	{ "--push-rate", 0, 100000 },
};

#define NNUM (sizeof(num_opts) / sizeof(num_opts[0]))

static void set_num(struct server_options *o, size_t which, long v)
{
	switch (which) {
	case 0: o->workers = (int)v; break;
	case 1: o->max_streams = (int)v; break;
	case 2: o->max_body = (size_t)v; break;
	case 3: o->max_apply_body = (size_t)v; break;
	case 4: o->token_ttl = (int)v; break;
	case 5: o->bcrypt_cost = (int)v; break;
	case 6: o->backup_keep = (int)v; break;
	case 7: o->max_conns_per_ip = (int)v; break;
	case 8: o->header_timeout_ms = (int64_t)v * 1000; break;
	case 9: o->body_timeout_ms = (int64_t)v * 1000; break;
	default: o->push.rate = (int)v; break;
	}
}

int cmd_serve(struct cli *cli, int argc, char **argv)
{
	struct server_options o;
	struct err e = ERR_INIT;
	enum log_format log_format = LOG_TEXT;
	const char *v;
	size_t k;
	long n;
	int i;

	server_options_init(&o);
	o.data_dir = cli->data_dir;
	v = getenv("POCKETCTL_LOG_FORMAT");
	if (v && *v && log_parse_format(v, &log_format))
		return cli_usage("serve", "POCKETCTL_LOG_FORMAT takes text or json, not '%s'",
				 v);
	v = getenv("POCKETCTL_ROOT");
	if (v && *v)
		o.root_dir = v;
	/* the environment's budgets first: --rate-limit overrides them */
	v = getenv("POCKETCTL_RATE_LIMIT");
	if (v && *v && ratelimit_config_parse(&o.rate, v, &e))
		return cli_usage("serve", "POCKETCTL_RATE_LIMIT: %s", e.msg);
	v = getenv("POCKETCTL_SECRET_KEY_FILE");
	if (v && *v)
		o.secret_key_file = v;
	v = getenv("PN_URL");   /* the original's relay variable */
	if (v && *v)
		o.push.relay = v;
	v = getenv("OPENCODE_URL");   /* the original's variable */
	if (v && *v && netguard_http_url(v, &e))
		return cli_usage("serve", "OPENCODE_URL: %s", e.msg);
	if (v && *v)
		o.poco.url = v;
	for (i = 1; i < argc; i++) {
		const char *opt = argv[i];

		v = NULL;
		if (!strcmp(opt, "--watch")) {
			o.watch_manifests = true;
			continue;
		}
		if (take(argc, argv, &i, "--listen", &v))
			o.listen = v;
		else if (take(argc, argv, &i, "--log-format", &v)) {
			if (*v && log_parse_format(v, &log_format))
				return cli_usage("serve", "--log-format takes text or json, not '%s'",
						 v);
		}
		else if (take(argc, argv, &i, "--root", &v))
			o.root_dir = v;
		else if (take(argc, argv, &i, "--manifests", &v))
			o.manifests_dir = v;
		else if (take(argc, argv, &i, "--applyset", &v))
			o.applyset = v;
		else if (take(argc, argv, &i, "--docker", &v))
			o.docker_host = v;
		else if (take(argc, argv, &i, "--secret-key", &v))
			o.secret_key_file = v;
		else if (take(argc, argv, &i, "--observability-url", &v)) {
			if (*v && strncmp(v, "http://", 7) &&
			    strncmp(v, "https://", 8))
				return cli_usage("serve", "--observability-url "
						 "needs an http:// or https:// "
						 "URL, not '%s'", v);
			o.observability_url = v;
		}
		else if (take(argc, argv, &i, "--rate-limit", &v)) {
			if (*v && ratelimit_config_parse(&o.rate, v, &e))
				return cli_usage("serve", "--rate-limit: %s",
						 e.msg);
		} else if (take(argc, argv, &i, "--push-relay", &v)) {
			o.push.relay = v;
			if (*v && netguard_http_url(v, &e))
				return cli_usage("serve", "--push-relay: %s",
						 e.msg);
		} else if (take(argc, argv, &i, "--push-relay-secret-file",
				&v)) {
			o.push.relay_secret_file = v;
		} else if (take(argc, argv, &i, "--push-allow", &v)) {
			struct netguard_cidr cidr;

			if (*v && netguard_cidr_parse(v, &cidr, &e))
				return cli_usage("serve", "--push-allow: %s",
						 e.msg);
			if (*v && o.push.nallow == PUSH_ALLOW_MAX)
				return cli_usage("serve", "--push-allow: at most %d blocks",
						 PUSH_ALLOW_MAX);
			if (*v)
				o.push.allow[o.push.nallow++] = v;
		} else if (take(argc, argv, &i, "--opencode-url", &v)) {
			if (*v && netguard_http_url(v, &e))
				return cli_usage("serve", "--opencode-url: %s",
						 e.msg);
			o.poco.url = v;
		} else if (take(argc, argv, &i, "--poco-notify-window", &v)) {
			if (*v && cli_parse_duration(v, false, &o.poco.window_ms))
				return cli_usage("serve",
						 "--poco-notify-window needs a duration such as 24h, 30m or 45s, not '%s'",
						 v);
		} else if (take(argc, argv, &i, "--backup-every", &v)) {
			if (*v && cli_parse_duration(v, false, &o.backup_every_ms))
				return cli_usage("serve",
						 "--backup-every needs a duration such as 1h, 30m or 45s, not '%s'",
						 v);
		} else if (take(argc, argv, &i, "--cron-grace", &v)) {
			if (!strcmp(v, "0"))
				o.cron_grace_ms = 0;
			else if (*v && cli_parse_duration(v, false, &o.cron_grace_ms))
				return cli_usage("serve",
						 "--cron-grace needs a duration such as 1h, 30m or 45s (0: no catch-up), not '%s'",
						 v);
		}
		for (k = 0; !v && k < NNUM; k++) {
			if (!take(argc, argv, &i, num_opts[k].name, &v))
				continue;
			if (parse_long(v, num_opts[k].min, num_opts[k].max, &n))
				return cli_usage("serve",
						 "%s needs a whole number from %ld to %ld, not '%s'",
						 num_opts[k].name, num_opts[k].min,
						 num_opts[k].max, v);
			set_num(&o, k, n);
		}
		if (!v)
			return cli_usage("serve", "unknown argument '%s'", opt);
		if (!*v)
			return cli_usage("serve", "%s needs a value", opt);
	}
	if (o.watch_manifests && !o.manifests_dir)
		return cli_usage("serve", "--watch needs --manifests DIR");
	if (o.applyset && !o.watch_manifests)
		return cli_usage("serve", "--applyset needs --manifests DIR --watch");
	log_set_format(log_format);
	if (server_run(&o, cli->schema, &e)) {
		/* the server's last word, a log line like the others */
		log_msg(LOG_ERROR, NULL, "%s", e.msg);
		return CLI_ERROR;
	}
	return CLI_OK;
}
