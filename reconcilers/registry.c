/*
 * registry.c - THE table of reconcilers: one line each, in the order a
 * full pass runs them. A new rendered artifact or actuator is one file in
 * reconcilers/ defining a `const struct reconciler` and one line here.
 */
#include "reconciler.h"
#include "rec_containers.h"

extern const struct reconciler rec_skills;   /* rec_skills.c */
extern const struct reconciler rec_proposals;   /* rec_proposals.c */

const struct reconciler *const reconcilers[] = {
	&rec_llm_env,            /* llm_keys -> llm.env (two copies) */
	&rec_opencode_json,      /* tool_permissions, agents -> opencode.json */
	&rec_agent_bundles,      /* ai_agents -> agents/<name>.md */
	&rec_docker_mcp,         /* mcp_servers -> docker-mcp.yaml, mcp.env */
	&rec_authorized_keys,    /* ssh_keys -> authorized_keys */
	&rec_proposals,          /* proposals/NAME.md -> draft proposals */
	&rec_skills,             /* sops -> skills/<name>/SKILL.md */
	&rec_containers,         /* containers + rendered files -> engine (last) */
};

const size_t nreconcilers = sizeof(reconcilers) / sizeof(reconcilers[0]);
