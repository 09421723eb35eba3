/*
 * registry.c - THE table of reconcilers: one line each, in the order a
 * full pass runs them (a source - the manifests re-apply - runs first
 * whatever its line). A new rendered artifact or actuator is one file in
 * reconcilers/ defining a `const struct reconciler` and one line here, with
 * its extern: every reconciler's extern is here and nowhere else.
 */
#include "reconciler.h"

extern const struct reconciler rec_manifests;        /* rec_manifests.c */
extern const struct reconciler rec_llm_env;          /* rec_llm_env.c */
extern const struct reconciler rec_opencode_json;    /* rec_opencode_json.c */
extern const struct reconciler rec_agent_bundles;    /* rec_agent_bundles.c */
extern const struct reconciler rec_docker_mcp;       /* rec_docker_mcp.c */
extern const struct reconciler rec_authorized_keys;  /* rec_authorized_keys.c */
extern const struct reconciler rec_proposals;        /* rec_proposals.c */
extern const struct reconciler rec_skills;           /* rec_skills.c */
extern const struct reconciler rec_containers;       /* rec_containers.c */
extern const struct reconciler rec_backups;          /* rec_backups.c */
extern const struct reconciler rec_cron;             /* rec_cron.c */
extern const struct reconciler rec_push;             /* rec_push.c */
extern const struct reconciler rec_poco;             /* rec_poco.c */

const struct reconciler *const reconcilers[] = {
	&rec_manifests,          /* --manifests DIR --watch -> the store */
	&rec_llm_env,            /* llm_keys -> llm.env (two copies) */
	&rec_opencode_json,      /* tool_permissions, agents -> opencode.json */
	&rec_agent_bundles,      /* ai_agents -> agents/<name>.md */
	&rec_docker_mcp,         /* mcp_servers -> docker-mcp.yaml, mcp.env */
	&rec_authorized_keys,    /* ssh_keys -> authorized_keys */
	&rec_proposals,          /* proposals/NAME.md -> draft proposals */
	&rec_skills,             /* sops -> skills/<name>/SKILL.md */
	&rec_containers,         /* containers + rendered files -> engine */
	&rec_backups,            /* --backup-every -> DATA_DIR/backups/ */
	&rec_cron,               /* cron_jobs -> messages when due */
	&rec_push,               /* notifications -> phones (push) */
	&rec_poco,               /* mcp_servers changes -> Poco (OpenCode) */
};

const size_t nreconcilers = sizeof(reconcilers) / sizeof(reconcilers[0]);
