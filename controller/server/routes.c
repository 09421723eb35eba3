/*
 * routes.c - every HTTP route of `pocketctl serve`, in one table (see
 * struct http_route in http.h). A new endpoint is one handler in its
 * module and one line here, in that module's block.
 */
#include <stddef.h>

#include "http.h"
/* BEGIN includes (one line per module) */
#include "api_auth.h"
#include "api_health.h"
#include "api_apply.h"
#include "api_records.h"
#include "api_realtime.h"
#include "api_watch.h"
#include "api_containers.h"
#include "api_governance.h"
#include "api_status.h"
#include "api_backups.h"
#include "api_cron.h"
#include "api_collections.h"
#include "api_sshkeys.h"
#include "api_files.h"
#include "api_proxy.h"
#include "api_push.h"
#include "api_ui.h"
#include "api_rendered.h"
/* END includes */

const struct http_route http_routes[] = {
	/* health and metrics (api_health.c) */
	{ "GET", "/healthz", api_healthz, STREAM_NONE },
	{ "GET", "/readyz", api_readyz, STREAM_NONE },
	{ "GET", "/api/health", api_health, STREAM_NONE },
	{ "GET", "/metrics", api_metrics, STREAM_NONE },

	/* auth (api_auth.c) */
	{ "POST", "/api/collections/:c/auth-with-password", api_auth_with_password, STREAM_NONE },
	{ "POST", "/api/collections/:c/auth-refresh", api_auth_refresh, STREAM_NONE },

	/* records (api_records.c) */
	{ "GET", "/api/collections/:c/records", api_records_list, STREAM_NONE },
	{ "POST", "/api/collections/:c/records", api_records_create, STREAM_NONE },
	{ "GET", "/api/collections/:c/records/:id", api_records_view, STREAM_NONE },
	{ "PATCH", "/api/collections/:c/records/:id", api_records_update, STREAM_NONE },
	{ "DELETE", "/api/collections/:c/records/:id", api_records_delete, STREAM_NONE },

	/* watch and realtime streams (api_watch.c, api_realtime.c) */
	{ "GET", "/api/v1/watch", api_watch, STREAM_PUMPED },
	{ "POST", "/api/v1/watch/tickets", api_watch_ticket, STREAM_NONE },
	{ "GET", "/api/realtime", api_realtime_connect, STREAM_PUMPED },
	{ "POST", "/api/realtime", api_realtime_subscribe, STREAM_NONE },

	/* declarative surface: apply (api_apply.c) */
	{ "POST", "/api/v1/apply", api_apply, STREAM_NONE },
	{ "POST", "/api/v1/diff", api_diff, STREAM_NONE },
	{ "GET", "/api/v1/manifests/:kind", api_manifests_list, STREAM_NONE },
	{ "GET", "/api/v1/manifests/:kind/:name", api_manifests_get, STREAM_NONE },
	{ "DELETE", "/api/v1/manifests/:kind/:name", api_manifests_delete, STREAM_NONE },

	/* reconcile engine status (api_status.c) */
	{ "GET", "/api/v1/status", api_status, STREAM_NONE },
	{ "POST", "/api/v1/reconcile", api_reconcile, STREAM_NONE },

	/* containers (api_containers.c) */
	{ "POST", "/api/v1/containers/:name/restart", api_container_restart, STREAM_NONE },
	{ "GET", "/api/pocketcoder/logs/:container", api_container_logs, STREAM_WORKER },

	/* governance (api_governance.c) */
	{ "POST", "/api/pocketcoder/permission", api_governance_permission, STREAM_NONE },
	{ "POST", "/api/pocketcoder/mcp_request", api_governance_mcp_request, STREAM_NONE },
	{ "GET", "/api/v1/ledger/verify", api_governance_ledger_verify, STREAM_NONE },

	/* collection metadata (api_collections.c) */
	{ "GET", "/api/collections", api_collections_list, STREAM_NONE },
	{ "GET", "/api/collections/:c", api_collections_view, STREAM_NONE },

	/* backups (api_backups.c) */
	{ "POST", "/api/v1/backups", api_backups_create, STREAM_NONE },
	{ "GET", "/api/v1/backups", api_backups_list, STREAM_NONE },

	/* the agent's scheduled tasks (api_cron.c) */
	{ "POST", "/api/pocketcoder/schedule_task", api_cron_schedule, STREAM_NONE },
	{ "GET", "/api/pocketcoder/scheduled_tasks", api_cron_list, STREAM_NONE },
	{ "POST", "/api/pocketcoder/cancel_scheduled_task", api_cron_cancel, STREAM_NONE },
	/* the sandbox's files (api_files.c) */
	{ "GET", "/api/pocketcoder/artifact/*", api_files_get, STREAM_NONE },
	{ "GET", "/api/pocketcoder/files/*", api_files_get, STREAM_NONE },

	/* the dashboard's reverse proxy (api_proxy.c), any method */
	{ NULL, PROXY_PREFIX "/*", api_proxy_observability, STREAM_NONE },

	/* the terminal's key sync (api_sshkeys.c) */
	{ "GET", "/api/pocketcoder/ssh_keys", api_sshkeys_list, STREAM_NONE },
	/* push notifications (api_push.c) */
	{ "POST", "/api/pocketcoder/push", api_push, STREAM_NONE },
	/* the rendered files (api_rendered.c) */
	{ "GET", "/api/v1/files", api_rendered_files, STREAM_NONE },
	/* the status page (api_ui.c) */
	{ "GET", "/", api_ui_redirect, STREAM_NONE },
	{ "GET", "/_", api_ui_redirect, STREAM_NONE },
	{ "GET", "/_/*", api_ui_asset, STREAM_NONE },
};

const size_t http_nroutes = sizeof(http_routes) / sizeof(http_routes[0]);
