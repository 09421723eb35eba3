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
#include "api_stream.h"
#include "api_containers.h"
#include "api_governance.h"
#include "api_status.h"
/* END includes */

const struct http_route http_routes[] = {
	/* health and metrics (api_health.c) */
	{ "GET", "/healthz", api_healthz, false },
	{ "GET", "/readyz", api_readyz, false },
	{ "GET", "/api/health", api_health, false },
	{ "GET", "/metrics", api_metrics, false },

	/* auth (api_auth.c) */
	{ "POST", "/api/collections/:c/auth-with-password", api_auth_with_password, false },
	{ "POST", "/api/collections/:c/auth-refresh", api_auth_refresh, false },

	/* records (api_records.c) */
	{ "GET", "/api/collections/:c/records", api_records_list, false },
	{ "POST", "/api/collections/:c/records", api_records_create, false },
	{ "GET", "/api/collections/:c/records/:id", api_records_view, false },
	{ "PATCH", "/api/collections/:c/records/:id", api_records_update, false },
	{ "DELETE", "/api/collections/:c/records/:id", api_records_delete, false },

	/* realtime and watch streams (api_stream.c) */
	{ "GET", "/api/v1/watch", api_watch, STREAM_PUMPED },
	{ "GET", "/api/realtime", api_realtime_connect, STREAM_PUMPED },
	{ "POST", "/api/realtime", api_realtime_subscribe, false },

	/* declarative surface: apply (api_apply.c) */
	{ "POST", "/api/v1/apply", api_apply, false },
	{ "POST", "/api/v1/diff", api_diff, false },
	{ "GET", "/api/v1/manifests/:kind", api_manifests_list, false },
	{ "GET", "/api/v1/manifests/:kind/:name", api_manifests_get, false },
	{ "DELETE", "/api/v1/manifests/:kind/:name", api_manifests_delete, false },

	/* reconcile engine status (api_status.c) */
	{ "GET", "/api/v1/status", api_status, false },
	{ "POST", "/api/v1/reconcile", api_reconcile, false },

	/* containers (api_containers.c) */
	{ "POST", "/api/v1/containers/:name/restart", api_container_restart, false },
	{ "GET", "/api/pocketcoder/logs/:container", api_container_logs,
	  STREAM_WORKER },

	/* governance (api_governance.c) */
	{ "POST", "/api/pocketcoder/permission", api_governance_permission, false },
	{ "POST", "/api/pocketcoder/mcp_request", api_governance_mcp_request, false },
	{ "GET", "/api/v1/ledger/verify", api_governance_ledger_verify, false },
};

const size_t http_nroutes = sizeof(http_routes) / sizeof(http_routes[0]);
