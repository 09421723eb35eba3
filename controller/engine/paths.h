/*
 * paths.h - where the rendered files go: each file's production path from
 * the original deployment, re-rooted under --root, each overridable from a
 * config file. The keys and their defaults are declared by the reconcilers
 * that own them (struct reconciler_path), so the list is the registry's;
 * today:
 *
 *   key               default (relative to --root)
 *   llm_env           workspace/.opencode/llm.env
 *   llm_env_copy      llm_keys/llm.env           (the sandbox's copy)
 *   opencode_json     workspace/.opencode/opencode.json
 *   agents_dir        workspace/.opencode/agents (one <name>.md per agent)
 *   docker_mcp_yaml   mcp_config/docker-mcp.yaml
 *   mcp_env           mcp_config/mcp.env
 *   authorized_keys   ssh_keys/authorized_keys
 *
 * The config file is YAML (or JSON): a mapping of some of these keys to a
 * path. A relative path is taken under the root, an absolute one as it is,
 * and "" turns that file off (its reconciler skips it). Every path must
 * lie inside the root (after "." and ".." are folded; the root itself is
 * not a file) unless the file says "allow_outside_root: true"; then paths
 * outside are allowed and kept absolute (they are still walked without
 * following any symlink, from "/"). Unknown keys,
 * non-string values, NUL bytes and two keys naming the same file are
 * refused with FILE:LINE:COLUMN. Example:
 *
 *     # DATA_DIR/paths.yaml
 *     llm_env_copy: ""                       # no sandbox
 *     authorized_keys: /srv/sandbox/authorized_keys
 */
#ifndef POCKETCTL_PATHS_H
#define POCKETCTL_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct reconciler;

#define PATHS_DEFAULT_ROOT "./pocket-root"
#define PATHS_CONFIG_ENV "POCKETCTL_PATHS"
#define PATHS_CONFIG_FILE "paths.yaml"     /* in the data directory */
#define PATHS_ALLOW_OUTSIDE "allow_outside_root"   /* boolean key */

/* A value type: fill with paths_load(), free with paths_release(). */
struct paths {
	char *root;                 /* owned; as given (default ./pocket-root) */
	char *config;               /* owned; the config file read, or NULL */
	size_t n;                   /* keys, in registry order */
	const char **key;           /* the keys (borrowed from the reconcilers) */
	bool *dir;                  /* key names a directory rendered into */
	char **p;                   /* owned; NULL when turned off */
};

/*
 * Resolve the path keys of the n reconcilers regs (in their order) under
 * root (NULL or "" = PATHS_DEFAULT_ROOT), then apply the overrides of
 * config_file (NULL: none). A key declared twice is ERR_INVALID. On error
 * *out is left empty and e names the file, position and key. Caller owns
 * *out; it borrows the keys from regs.
 */
int paths_load(struct paths *out, const char *root, const char *config_file,
	       const struct reconciler *const *regs, size_t n, struct err *e);

/* Accepts NULL; leaves p empty. */
void paths_release(struct paths *p);

/* The path of key, or NULL when turned off or unknown. Borrowed from p. */
const char *paths_get(const struct paths *p, const char *key);

/*
 * The config file to use when none was given: $POCKETCTL_PATHS when set
 * and non-empty, else DATA_DIR/paths.yaml when that file exists, else
 * NULL. Caller owns the result (free()).
 */
char *paths_default_config(const char *data_dir);

#endif
