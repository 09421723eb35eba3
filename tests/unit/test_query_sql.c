/*
 * test_query_sql.c - the exact SQL text and bound values that filters and
 * sorts become, over the shipped schema, for guests, users, superusers and
 * rule checks with a submitted body, through filter_compile() and the
 * store's query_sql_build(). The table was captured from the compiler
 * before the store query became a predicate tree, so it pins that the tree
 * and its SQL generation say exactly what the old compiler said (same
 * text, same binds, hence the same query plans).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "store/filter.h"
#include "store/query_sql.h"
#include "store/schema.h"

enum who { GUEST, ALICE, BOB, SUPER, BODY };

struct gwhere {
	const char *collection;
	enum who who;
	const char *filter;
	const char *sql;
	const char *binds;     /* compact JSON array */
};

struct gorder {
	const char *collection;
	enum who who;
	const char *sort;
	const char *sql;
};

static const struct gwhere gwheres[] = {
	{ "chats", GUEST, "",
	  "1",
	  "[]" },
	{ "chats", GUEST, "title = 'a'",
	  "json_extract(records.data, '$.title') = ?",
	  "[\"a\"]" },
	{ "chats", GUEST, "title != 'a'",
	  "json_extract(records.data, '$.title') IS NOT ?",
	  "[\"a\"]" },
	{ "chats", GUEST, "title = ''",
	  "(json_extract(records.data, '$.title') = '' OR json_extract(records.data, '$.title') IS NULL)",
	  "[]" },
	{ "chats", GUEST, "title != ''",
	  "(json_extract(records.data, '$.title') IS NOT '' AND json_extract(records.data, '$.title') IS NOT NULL)",
	  "[]" },
	{ "chats", GUEST, "title = null",
	  "(json_extract(records.data, '$.title') = '' OR json_extract(records.data, '$.title') IS NULL)",
	  "[]" },
	{ "chats", GUEST, "null = title",
	  "(json_extract(records.data, '$.title') = '' OR json_extract(records.data, '$.title') IS NULL)",
	  "[]" },
	{ "chats", GUEST, "'' = ''",
	  "'' = ''",
	  "[]" },
	{ "chats", GUEST, "null != ''",
	  "'' IS NOT ''",
	  "[]" },
	{ "chats", GUEST, "title = description",
	  "COALESCE(json_extract(records.data, '$.title'), '') = COALESCE(json_extract(records.data, '$.description'), '')",
	  "[]" },
	{ "chats", GUEST, "title != description",
	  "COALESCE(json_extract(records.data, '$.title'), '') IS NOT COALESCE(json_extract(records.data, '$.description'), '')",
	  "[]" },
	{ "chats", GUEST, "'a' = 'b'",
	  "? = ?",
	  "[\"a\",\"b\"]" },
	{ "chats", GUEST, "1 = 1.5",
	  "? = ?",
	  "[1,1.5]" },
	{ "tool_permissions", GUEST, "priority > 1",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) > ?",
	  "[1]" },
	{ "tool_permissions", GUEST, "priority >= 1.5",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) >= ?",
	  "[1.5]" },
	{ "tool_permissions", GUEST, "priority < -2",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) < ?",
	  "[-2]" },
	{ "tool_permissions", GUEST, "priority <= 3",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) <= ?",
	  "[3]" },
	{ "tool_permissions", GUEST, "priority > tool",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) > json_extract(records.data, '$.tool')",
	  "[]" },
	{ "tool_permissions", GUEST, "priority = active",
	  "COALESCE(COALESCE(json_extract(records.data, '$.priority'), 0), '') = COALESCE(COALESCE(json_extract(records.data, '$.active'), 0), '')",
	  "[]" },
	{ "chats", GUEST, "archived = true",
	  "COALESCE(json_extract(records.data, '$.archived'), 0) = ?",
	  "[1]" },
	{ "chats", GUEST, "archived = false",
	  "COALESCE(json_extract(records.data, '$.archived'), 0) = ?",
	  "[0]" },
	{ "chats", GUEST, "archived != TRUE",
	  "COALESCE(json_extract(records.data, '$.archived'), 0) IS NOT ?",
	  "[1]" },
	{ "chats", GUEST, "true = archived",
	  "? = COALESCE(json_extract(records.data, '$.archived'), 0)",
	  "[1]" },
	{ "chats", GUEST, "title ~ 'Al'",
	  "json_extract(records.data, '$.title') LIKE ? ESCAPE '\\'",
	  "[\"%Al%\"]" },
	{ "chats", GUEST, "title !~ 'a%b'",
	  "json_extract(records.data, '$.title') NOT LIKE ? ESCAPE '\\'",
	  "[\"a%b\"]" },
	{ "chats", GUEST, "title ~ 'a_b'",
	  "json_extract(records.data, '$.title') LIKE ? ESCAPE '\\'",
	  "[\"%a\\\\_b%\"]" },
	{ "chats", GUEST, "title ~ 'x\\_y'",
	  "json_extract(records.data, '$.title') LIKE ? ESCAPE '\\'",
	  "[\"%x\\\\_y%\"]" },
	{ "chats", GUEST, "title ~ 'back\\\\slash'",
	  "json_extract(records.data, '$.title') LIKE ? ESCAPE '\\'",
	  "[\"%back\\\\slash%\"]" },
	{ "chats", GUEST, "title ~ description",
	  "json_extract(records.data, '$.title') LIKE ('%' || json_extract(records.data, '$.description') || '%') ESCAPE '\\'",
	  "[]" },
	{ "chats", GUEST, "title !~ description",
	  "json_extract(records.data, '$.title') NOT LIKE ('%' || json_extract(records.data, '$.description') || '%') ESCAPE '\\'",
	  "[]" },
	{ "tool_permissions", GUEST, "priority ~ 5",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) LIKE ? ESCAPE '\\'",
	  "[\"%5%\"]" },
	{ "chats", GUEST, "title ~ 2.5",
	  "json_extract(records.data, '$.title') LIKE ? ESCAPE '\\'",
	  "[\"%2.5%\"]" },
	{ "chats", GUEST, "title ~ null",
	  "json_extract(records.data, '$.title') LIKE ? ESCAPE '\\'",
	  "[\"%%\"]" },
	{ "chats", GUEST, "title ~ true",
	  "json_extract(records.data, '$.title') LIKE ? ESCAPE '\\'",
	  "[\"%1%\"]" },
	{ "chats", GUEST, "title ?= 'a'",
	  "json_extract(records.data, '$.title') = ?",
	  "[\"a\"]" },
	{ "chats", GUEST, "title ?!= 'a'",
	  "json_extract(records.data, '$.title') IS NOT ?",
	  "[\"a\"]" },
	{ "chats", GUEST, "title ?~ 'a'",
	  "json_extract(records.data, '$.title') LIKE ? ESCAPE '\\'",
	  "[\"%a%\"]" },
	{ "chats", GUEST, "title ?!~ 'a'",
	  "json_extract(records.data, '$.title') NOT LIKE ? ESCAPE '\\'",
	  "[\"%a%\"]" },
	{ "tool_permissions", GUEST, "priority ?> 1",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) > ?",
	  "[1]" },
	{ "tool_permissions", GUEST, "priority ?>= 1",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) >= ?",
	  "[1]" },
	{ "tool_permissions", GUEST, "priority ?< 1",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) < ?",
	  "[1]" },
	{ "tool_permissions", GUEST, "priority ?<= 1",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) <= ?",
	  "[1]" },
	{ "chats", GUEST, "id = 'c1'",
	  "records.id = ?",
	  "[\"c1\"]" },
	{ "chats", GUEST, "created > '2024-01-01'",
	  "records.created > ?",
	  "[\"2024-01-01\"]" },
	{ "chats", GUEST, "updated <= '2025'",
	  "records.updated <= ?",
	  "[\"2025\"]" },
	{ "chats", GUEST, "id != created",
	  "COALESCE(records.id, '') IS NOT COALESCE(records.created, '')",
	  "[]" },
	{ "chats", GUEST, "user.name = 'Alice'",
	  "(SELECT json_extract(r1.data, '$.name') FROM records r1 WHERE r1.collection = 'users' AND r1.id = json_extract(records.data, '$.user')) = ?",
	  "[\"Alice\"]" },
	{ "chats", GUEST, "user.id = 'u_bob'",
	  "(SELECT r1.id FROM records r1 WHERE r1.collection = 'users' AND r1.id = json_extract(records.data, '$.user')) = ?",
	  "[\"u_bob\"]" },
	{ "chats", GUEST, "agent.name = 'x'",
	  "(SELECT r1.name FROM records r1 WHERE r1.collection = 'ai_agents' AND r1.id = json_extract(records.data, '$.agent')) = ?",
	  "[\"x\"]" },
	{ "chats", GUEST, "agent.model.name = 'x'",
	  "(SELECT (SELECT r2.name FROM records r2 WHERE r2.collection = 'ai_models' AND r2.id = json_extract(r1.data, '$.model')) FROM records r1 WHERE r1.collection = 'ai_agents' AND r1.id = json_extract(records.data, '$.agent')) = ?",
	  "[\"x\"]" },
	{ "chats", GUEST, "agent.model.identifier ~ 'x'",
	  "(SELECT (SELECT json_extract(r2.data, '$.identifier') FROM records r2 WHERE r2.collection = 'ai_models' AND r2.id = json_extract(r1.data, '$.model')) FROM records r1 WHERE r1.collection = 'ai_agents' AND r1.id = json_extract(records.data, '$.agent')) LIKE ? ESCAPE '\\'",
	  "[\"%x%\"]" },
	{ "messages", GUEST, "chat.agent.model.name = 'x'",
	  "(SELECT (SELECT (SELECT r3.name FROM records r3 WHERE r3.collection = 'ai_models' AND r3.id = json_extract(r2.data, '$.model')) FROM records r2 WHERE r2.collection = 'ai_agents' AND r2.id = json_extract(r1.data, '$.agent')) FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = ?",
	  "[\"x\"]" },
	{ "messages", GUEST, "chat.agent.prompt.body ~ chat.agent.model.identifier",
	  "(SELECT (SELECT (SELECT json_extract(r3.data, '$.body') FROM records r3 WHERE r3.collection = 'ai_prompts' AND r3.id = json_extract(r2.data, '$.prompt')) FROM records r2 WHERE r2.collection = 'ai_agents' AND r2.id = json_extract(r1.data, '$.agent')) FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) LIKE ('%' || (SELECT (SELECT (SELECT json_extract(r6.data, '$.identifier') FROM records r6 WHERE r6.collection = 'ai_models' AND r6.id = json_extract(r5.data, '$.model')) FROM records r5 WHERE r5.collection = 'ai_agents' AND r5.id = json_extract(r4.data, '$.agent')) FROM records r4 WHERE r4.collection = 'chats' AND r4.id = json_extract(records.data, '$.chat')) || '%') ESCAPE '\\'",
	  "[]" },
	{ "chats", GUEST, "user.verified = true",
	  "(SELECT COALESCE(json_extract(r1.data, '$.verified'), 0) FROM records r1 WHERE r1.collection = 'users' AND r1.id = json_extract(records.data, '$.user')) = ?",
	  "[1]" },
	{ "chats", GUEST, "agent.temperature > 1",
	  "(SELECT COALESCE(json_extract(r1.data, '$.temperature'), 0) FROM records r1 WHERE r1.collection = 'ai_agents' AND r1.id = json_extract(records.data, '$.agent')) > ?",
	  "[1]" },
	{ "chats", GUEST, "agent.is_init = false",
	  "(SELECT COALESCE(json_extract(r1.data, '$.is_init'), 0) FROM records r1 WHERE r1.collection = 'ai_agents' AND r1.id = json_extract(records.data, '$.agent')) = ?",
	  "[0]" },
	{ "chats", GUEST, "agent.description = user.name",
	  "COALESCE((SELECT json_extract(r1.data, '$.description') FROM records r1 WHERE r1.collection = 'ai_agents' AND r1.id = json_extract(records.data, '$.agent')), '') = COALESCE((SELECT json_extract(r2.data, '$.name') FROM records r2 WHERE r2.collection = 'users' AND r2.id = json_extract(records.data, '$.user')), '')",
	  "[]" },
	{ "chats", GUEST, "user.name = '' && agent.description != null",
	  "(((SELECT json_extract(r1.data, '$.name') FROM records r1 WHERE r1.collection = 'users' AND r1.id = json_extract(records.data, '$.user')) = '' OR (SELECT json_extract(r1.data, '$.name') FROM records r1 WHERE r1.collection = 'users' AND r1.id = json_extract(records.data, '$.user')) IS NULL) AND ((SELECT json_extract(r2.data, '$.description') FROM records r2 WHERE r2.collection = 'ai_agents' AND r2.id = json_extract(records.data, '$.agent')) IS NOT '' AND (SELECT json_extract(r2.data, '$.description') FROM records r2 WHERE r2.collection = 'ai_agents' AND r2.id = json_extract(records.data, '$.agent')) IS NOT NULL))",
	  "[]" },
	{ "messages", GUEST, "parts.text = 'x'",
	  "json_extract(records.data, ?) = ?",
	  "[\"$.parts.text\",\"x\"]" },
	{ "messages", GUEST, "parts.0.text = 'x'",
	  "json_extract(records.data, ?) = ?",
	  "[\"$.parts[0].text\",\"x\"]" },
	{ "messages", GUEST, "parts.a.b.2 != null",
	  "(json_extract(records.data, ?) IS NOT '' AND json_extract(records.data, ?) IS NOT NULL)",
	  "[\"$.parts.a.b[2]\",\"$.parts.a.b[2]\"]" },
	{ "messages", GUEST, "parts = null",
	  "(json_extract(records.data, '$.parts') = '' OR json_extract(records.data, '$.parts') IS NULL)",
	  "[]" },
	{ "messages", GUEST, "chat.user.email ~ 'x'",
	  "(SELECT (SELECT json_extract(r2.data, '$.email') FROM records r2 WHERE r2.collection = 'users' AND r2.id = json_extract(r1.data, '$.user')) FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) LIKE ? ESCAPE '\\'",
	  "[\"%x%\"]" },
	{ "chats", ALICE, "user = @request.auth.id",
	  "json_extract(records.data, '$.user') = ?",
	  "[\"u_alice\"]" },
	{ "chats", GUEST, "user = @request.auth.id",
	  "(json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL)",
	  "[]" },
	{ "chats", ALICE, "@request.auth.id != ''",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "chats", GUEST, "@request.auth.id != ''",
	  "'' IS NOT ''",
	  "[]" },
	{ "chats", ALICE, "@request.auth.role = 'admin'",
	  "? = ?",
	  "[\"admin\",\"admin\"]" },
	{ "chats", BOB, "@request.auth.verified = true",
	  "'' = ?",
	  "[1]" },
	{ "chats", ALICE, "@request.auth.verified = true",
	  "? = ?",
	  "[1,1]" },
	{ "chats", ALICE, "@request.auth.collectionName = 'users'",
	  "? = ?",
	  "[\"users\",\"users\"]" },
	{ "chats", ALICE, "@request.auth.collectionId = 'x'",
	  "? = ?",
	  "[\"_pb_users_auth_\",\"x\"]" },
	{ "chats", SUPER, "@request.auth.collectionName = 'users'",
	  "? = ?",
	  "[\"_superusers\",\"users\"]" },
	{ "chats", SUPER, "@request.auth.id = ''",
	  "'' = ''",
	  "[]" },
	{ "chats", GUEST, "@request.auth.name = user.name",
	  "((SELECT json_extract(r1.data, '$.name') FROM records r1 WHERE r1.collection = 'users' AND r1.id = json_extract(records.data, '$.user')) = '' OR (SELECT json_extract(r1.data, '$.name') FROM records r1 WHERE r1.collection = 'users' AND r1.id = json_extract(records.data, '$.user')) IS NULL)",
	  "[]" },
	{ "chats", ALICE, "@request.auth.id = user.id && user.role = @request.auth.role",
	  "(? = (SELECT r1.id FROM records r1 WHERE r1.collection = 'users' AND r1.id = json_extract(records.data, '$.user')) AND (SELECT json_extract(r2.data, '$.role') FROM records r2 WHERE r2.collection = 'users' AND r2.id = json_extract(records.data, '$.user')) = ?)",
	  "[\"u_alice\",\"admin\"]" },
	{ "chats", BODY, "@request.body.title = 'x'",
	  "? = ?",
	  "[\"x\",\"x\"]" },
	{ "chats", BODY, "@request.body.archived = true",
	  "? = ?",
	  "[1,1]" },
	{ "chats", BODY, "@request.body.user = ''",
	  "? = ''",
	  "[\"u_bob\"]" },
	{ "chats", BODY, "@request.body.tags ~ tags",
	  "? LIKE ('%' || json_extract(records.data, '$.tags') || '%') ESCAPE '\\'",
	  "[\"t%\"]" },
	{ "chats", GUEST, "@request.body.title = 'x'",
	  "'' = ?",
	  "[\"x\"]" },
	{ "messages", BODY, "@request.body.parts = 'x'",
	  "? = ?",
	  "[\"{\\\"k\\\":[1]}\",\"x\"]" },
	{ "chats", GUEST, "(title = 'a' || title = 'b') && archived = true",
	  "((json_extract(records.data, '$.title') = ? OR json_extract(records.data, '$.title') = ?) AND COALESCE(json_extract(records.data, '$.archived'), 0) = ?)",
	  "[\"a\",\"b\",1]" },
	{ "chats", GUEST, "title = 'a' || title = 'b' || title = 'c' || title = 'd' || title = 'e'",
	  "((json_extract(records.data, '$.title') = ? OR json_extract(records.data, '$.title') = ?) OR (json_extract(records.data, '$.title') = ? OR (json_extract(records.data, '$.title') = ? OR json_extract(records.data, '$.title') = ?)))",
	  "[\"a\",\"b\",\"c\",\"d\",\"e\"]" },
	{ "chats", GUEST, "title = 'a' && tags > 'b' && archived = false",
	  "(json_extract(records.data, '$.title') = ? AND (json_extract(records.data, '$.tags') > ? AND COALESCE(json_extract(records.data, '$.archived'), 0) = ?))",
	  "[\"a\",\"b\",0]" },
	{ "chats", GUEST, "title = 'a' && (tags > 'b' || (archived = true && user.name = 'x'))",
	  "(json_extract(records.data, '$.title') = ? AND (json_extract(records.data, '$.tags') > ? OR (COALESCE(json_extract(records.data, '$.archived'), 0) = ? AND (SELECT json_extract(r1.data, '$.name') FROM records r1 WHERE r1.collection = 'users' AND r1.id = json_extract(records.data, '$.user')) = ?)))",
	  "[\"a\",\"b\",1,\"x\"]" },
	{ "chats", GUEST, "((title = 'a'))",
	  "json_extract(records.data, '$.title') = ?",
	  "[\"a\"]" },
	{ "chats", GUEST, "title = 'a' && tags = 'b' || title = 'b' && tags = 'c'",
	  "((json_extract(records.data, '$.title') = ? AND json_extract(records.data, '$.tags') = ?) OR (json_extract(records.data, '$.title') = ? AND json_extract(records.data, '$.tags') = ?))",
	  "[\"a\",\"b\",\"b\",\"c\"]" },
	{ "mcp_servers", SUPER, "config = 'x'",
	  "json_extract(records.data, '$.config') = ?",
	  "[\"x\"]" },
	{ "mcp_servers", SUPER, "config.k ~ 'x'",
	  "json_extract(records.data, ?) LIKE ? ESCAPE '\\'",
	  "[\"$.config.k\",\"%x%\"]" },
	{ "mcp_servers", GUEST, "name > 'a' && reason = 'b'",
	  "(records.name > ? AND json_extract(records.data, '$.reason') = ?)",
	  "[\"a\",\"b\"]" },
	{ "mcp_servers", GUEST, "name = '' || name != 'x'",
	  "((records.name = '' OR records.name IS NULL) OR records.name IS NOT ?)",
	  "[\"x\"]" },
	{ "ai_agents", GUEST, "model.name = 'm'",
	  "(SELECT r1.name FROM records r1 WHERE r1.collection = 'ai_models' AND r1.id = json_extract(records.data, '$.model')) = ?",
	  "[\"m\"]" },
	{ "ai_agents", GUEST, "name ~ prompt.name",
	  "records.name LIKE ('%' || (SELECT r1.name FROM records r1 WHERE r1.collection = 'ai_prompts' AND r1.id = json_extract(records.data, '$.prompt')) || '%') ESCAPE '\\'",
	  "[]" },
	{ "chats", GUEST, "true = true",
	  "? = ?",
	  "[1,1]" },
	{ "chats", GUEST, "1 = 1.0",
	  "? = ?",
	  "[1,1.0]" },
	{ "chats", GUEST, "title = \"it's\"",
	  "json_extract(records.data, '$.title') = ?",
	  "[\"it's\"]" },
	{ "chats", GUEST, "title = 'say \\'hi\\''",
	  "json_extract(records.data, '$.title') = ?",
	  "[\"say 'hi'\"]" },
	{ "chats", GUEST, "title = -0.25",
	  "json_extract(records.data, '$.title') = ?",
	  "[-0.25]" },
	{ "chats", GUEST, "title = 9007199254740993",
	  "json_extract(records.data, '$.title') = ?",
	  "[9007199254740993]" },
	{ "chats", GUEST, "turn = 'user'",
	  "json_extract(records.data, '$.turn') = ?",
	  "[\"user\"]" },
	{ "chats", GUEST, "turn != ''",
	  "(json_extract(records.data, '$.turn') IS NOT '' AND json_extract(records.data, '$.turn') IS NOT NULL)",
	  "[]" },
	{ "users", GUEST, "verified = true",
	  "COALESCE(json_extract(records.data, '$.verified'), 0) = ?",
	  "[1]" },
	{ "users", GUEST, "email ~ '@x.io'",
	  "json_extract(records.data, '$.email') LIKE ? ESCAPE '\\'",
	  "[\"%@x.io%\"]" },
	{ "users", ALICE, "id = @request.auth.id",
	  "records.id = ?",
	  "[\"u_alice\"]" },
	{ "users", GUEST, "id = @request.auth.id || @request.auth.role = \"admin\"",
	  "((records.id = '' OR records.id IS NULL) OR '' = ?)",
	  "[\"admin\"]" },
	{ "users", ALICE, "id = @request.auth.id || @request.auth.role = \"admin\"",
	  "(records.id = ? OR ? = ?)",
	  "[\"u_alice\",\"admin\",\"admin\"]" },
	{ "users", SUPER, "id = @request.auth.id || @request.auth.role = \"admin\"",
	  "((records.id = '' OR records.id IS NULL) OR '' = ?)",
	  "[\"admin\"]" },
	{ "users", GUEST, "id = @request.auth.id",
	  "(records.id = '' OR records.id IS NULL)",
	  "[]" },
	{ "users", ALICE, "id = @request.auth.id",
	  "records.id = ?",
	  "[\"u_alice\"]" },
	{ "users", SUPER, "id = @request.auth.id",
	  "(records.id = '' OR records.id IS NULL)",
	  "[]" },
	{ "ai_prompts", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "ai_prompts", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "ai_prompts", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "ai_models", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "ai_models", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "ai_models", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "ai_agents", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "ai_agents", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "ai_agents", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "chats", GUEST, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR ('' = ? OR '' = ?)))",
	  "[\"agent\",\"admin\"]" },
	{ "chats", ALICE, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND (json_extract(records.data, '$.user') = ? OR (? = ? OR ? = ?)))",
	  "[\"u_alice\",\"u_alice\",\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "chats", SUPER, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR ('' = ? OR '' = ?)))",
	  "[\"agent\",\"admin\"]" },
	{ "chats", GUEST, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "chats", ALICE, "@request.auth.id != \"\" && user = @request.auth.id",
	  "(? IS NOT '' AND json_extract(records.data, '$.user') = ?)",
	  "[\"u_alice\",\"u_alice\"]" },
	{ "chats", SUPER, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "chats", GUEST, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR '' = ?))",
	  "[\"admin\"]" },
	{ "chats", ALICE, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND (json_extract(records.data, '$.user') = ? OR ? = ?))",
	  "[\"u_alice\",\"u_alice\",\"admin\",\"admin\"]" },
	{ "chats", SUPER, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR '' = ?))",
	  "[\"admin\"]" },
	{ "messages", GUEST, "@request.auth.id != \"\" && (chat.user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND (((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL) OR ('' = ? OR '' = ?)))",
	  "[\"agent\",\"admin\"]" },
	{ "messages", ALICE, "@request.auth.id != \"\" && (chat.user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND ((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = ? OR (? = ? OR ? = ?)))",
	  "[\"u_alice\",\"u_alice\",\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "messages", SUPER, "@request.auth.id != \"\" && (chat.user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND (((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL) OR ('' = ? OR '' = ?)))",
	  "[\"agent\",\"admin\"]" },
	{ "messages", GUEST, "@request.auth.id != \"\" && ((chat.user = @request.auth.id && role = \"user\") || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL) AND json_extract(records.data, '$.role') = ?) OR ('' = ? OR '' = ?)))",
	  "[\"user\",\"agent\",\"admin\"]" },
	{ "messages", ALICE, "@request.auth.id != \"\" && ((chat.user = @request.auth.id && role = \"user\") || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND (((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = ? AND json_extract(records.data, '$.role') = ?) OR (? = ? OR ? = ?)))",
	  "[\"u_alice\",\"u_alice\",\"user\",\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "messages", SUPER, "@request.auth.id != \"\" && ((chat.user = @request.auth.id && role = \"user\") || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL) AND json_extract(records.data, '$.role') = ?) OR ('' = ? OR '' = ?)))",
	  "[\"user\",\"agent\",\"admin\"]" },
	{ "messages", GUEST, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "messages", ALICE, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? = ? OR ? = ?)",
	  "[\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "messages", SUPER, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "messages", GUEST, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "messages", ALICE, "@request.auth.role = \"admin\"",
	  "? = ?",
	  "[\"admin\",\"admin\"]" },
	{ "messages", SUPER, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "permissions", GUEST, "@request.auth.id != \"\" && (chat.user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND (((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL) OR ('' = ? OR '' = ?)))",
	  "[\"agent\",\"admin\"]" },
	{ "permissions", ALICE, "@request.auth.id != \"\" && (chat.user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND ((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = ? OR (? = ? OR ? = ?)))",
	  "[\"u_alice\",\"u_alice\",\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "permissions", SUPER, "@request.auth.id != \"\" && (chat.user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND (((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL) OR ('' = ? OR '' = ?)))",
	  "[\"agent\",\"admin\"]" },
	{ "permissions", GUEST, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "permissions", ALICE, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? = ? OR ? = ?)",
	  "[\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "permissions", SUPER, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "permissions", GUEST, "(chat.user = @request.auth.id || @request.auth.role = \"admin\") && status = \"draft\"",
	  "((((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL) OR '' = ?) AND json_extract(records.data, '$.status') = ?)",
	  "[\"admin\",\"draft\"]" },
	{ "permissions", ALICE, "(chat.user = @request.auth.id || @request.auth.role = \"admin\") && status = \"draft\"",
	  "(((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = ? OR ? = ?) AND json_extract(records.data, '$.status') = ?)",
	  "[\"u_alice\",\"admin\",\"admin\",\"draft\"]" },
	{ "permissions", SUPER, "(chat.user = @request.auth.id || @request.auth.role = \"admin\") && status = \"draft\"",
	  "((((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL) OR '' = ?) AND json_extract(records.data, '$.status') = ?)",
	  "[\"admin\",\"draft\"]" },
	{ "permissions", GUEST, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "permissions", ALICE, "@request.auth.role = \"admin\"",
	  "? = ?",
	  "[\"admin\",\"admin\"]" },
	{ "permissions", SUPER, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "sandbox_agents", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "sandbox_agents", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "sandbox_agents", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "sandbox_agents", GUEST, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "sandbox_agents", ALICE, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? = ? OR ? = ?)",
	  "[\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "sandbox_agents", SUPER, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "ssh_keys", GUEST, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR '' = ?))",
	  "[\"admin\"]" },
	{ "ssh_keys", ALICE, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND (json_extract(records.data, '$.user') = ? OR ? = ?))",
	  "[\"u_alice\",\"u_alice\",\"admin\",\"admin\"]" },
	{ "ssh_keys", SUPER, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR '' = ?))",
	  "[\"admin\"]" },
	{ "ssh_keys", GUEST, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "ssh_keys", ALICE, "@request.auth.id != \"\" && user = @request.auth.id",
	  "(? IS NOT '' AND json_extract(records.data, '$.user') = ?)",
	  "[\"u_alice\",\"u_alice\"]" },
	{ "ssh_keys", SUPER, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "tool_permissions", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "tool_permissions", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "tool_permissions", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "tool_permissions", GUEST, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "tool_permissions", ALICE, "@request.auth.role = \"admin\"",
	  "? = ?",
	  "[\"admin\",\"admin\"]" },
	{ "tool_permissions", SUPER, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "healthchecks", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "healthchecks", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "healthchecks", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "healthchecks", GUEST, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "healthchecks", ALICE, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? = ? OR ? = ?)",
	  "[\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "healthchecks", SUPER, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "healthchecks", GUEST, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "healthchecks", ALICE, "@request.auth.role = \"admin\"",
	  "? = ?",
	  "[\"admin\",\"admin\"]" },
	{ "healthchecks", SUPER, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "mcp_servers", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "mcp_servers", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "mcp_servers", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "mcp_servers", GUEST, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "mcp_servers", ALICE, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? = ? OR ? = ?)",
	  "[\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "mcp_servers", SUPER, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "mcp_servers", GUEST, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "mcp_servers", ALICE, "@request.auth.role = \"admin\"",
	  "? = ?",
	  "[\"admin\",\"admin\"]" },
	{ "mcp_servers", SUPER, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "proposals", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "proposals", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "proposals", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "proposals", GUEST, "@request.auth.id != \"\" && (@request.auth.role = \"admin\" || status = \"draft\")",
	  "('' IS NOT '' AND ('' = ? OR json_extract(records.data, '$.status') = ?))",
	  "[\"admin\",\"draft\"]" },
	{ "proposals", ALICE, "@request.auth.id != \"\" && (@request.auth.role = \"admin\" || status = \"draft\")",
	  "(? IS NOT '' AND (? = ? OR json_extract(records.data, '$.status') = ?))",
	  "[\"u_alice\",\"admin\",\"admin\",\"draft\"]" },
	{ "proposals", SUPER, "@request.auth.id != \"\" && (@request.auth.role = \"admin\" || status = \"draft\")",
	  "('' IS NOT '' AND ('' = ? OR json_extract(records.data, '$.status') = ?))",
	  "[\"admin\",\"draft\"]" },
	{ "proposals", GUEST, "@request.auth.role = \"admin\" || (@request.auth.id != \"\" && status = \"draft\" && @request.body.status != \"approved\")",
	  "('' = ? OR ('' IS NOT '' AND (json_extract(records.data, '$.status') = ? AND '' IS NOT ?)))",
	  "[\"admin\",\"draft\",\"approved\"]" },
	{ "proposals", ALICE, "@request.auth.role = \"admin\" || (@request.auth.id != \"\" && status = \"draft\" && @request.body.status != \"approved\")",
	  "(? = ? OR (? IS NOT '' AND (json_extract(records.data, '$.status') = ? AND '' IS NOT ?)))",
	  "[\"admin\",\"admin\",\"u_alice\",\"draft\",\"approved\"]" },
	{ "proposals", SUPER, "@request.auth.role = \"admin\" || (@request.auth.id != \"\" && status = \"draft\" && @request.body.status != \"approved\")",
	  "('' = ? OR ('' IS NOT '' AND (json_extract(records.data, '$.status') = ? AND '' IS NOT ?)))",
	  "[\"admin\",\"draft\",\"approved\"]" },
	{ "proposals", GUEST, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "proposals", ALICE, "@request.auth.role = \"admin\"",
	  "? = ?",
	  "[\"admin\",\"admin\"]" },
	{ "proposals", SUPER, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "sops", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "sops", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "sops", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "questions", GUEST, "@request.auth.id != \"\" && (chat.user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND (((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL) OR ('' = ? OR '' = ?)))",
	  "[\"agent\",\"admin\"]" },
	{ "questions", ALICE, "@request.auth.id != \"\" && (chat.user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND ((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = ? OR (? = ? OR ? = ?)))",
	  "[\"u_alice\",\"u_alice\",\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "questions", SUPER, "@request.auth.id != \"\" && (chat.user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND (((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL) OR ('' = ? OR '' = ?)))",
	  "[\"agent\",\"admin\"]" },
	{ "questions", GUEST, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "questions", ALICE, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? = ? OR ? = ?)",
	  "[\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "questions", SUPER, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "questions", GUEST, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "questions", ALICE, "@request.auth.role = \"admin\"",
	  "? = ?",
	  "[\"admin\",\"admin\"]" },
	{ "questions", SUPER, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "devices", GUEST, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "devices", ALICE, "@request.auth.id != \"\" && user = @request.auth.id",
	  "(? IS NOT '' AND json_extract(records.data, '$.user') = ?)",
	  "[\"u_alice\",\"u_alice\"]" },
	{ "devices", SUPER, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "llm_keys", GUEST, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR '' = ?))",
	  "[\"admin\"]" },
	{ "llm_keys", ALICE, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND (json_extract(records.data, '$.user') = ? OR ? = ?))",
	  "[\"u_alice\",\"u_alice\",\"admin\",\"admin\"]" },
	{ "llm_keys", SUPER, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR '' = ?))",
	  "[\"admin\"]" },
	{ "llm_keys", GUEST, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "llm_keys", ALICE, "@request.auth.id != \"\" && user = @request.auth.id",
	  "(? IS NOT '' AND json_extract(records.data, '$.user') = ?)",
	  "[\"u_alice\",\"u_alice\"]" },
	{ "llm_keys", SUPER, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "model_selection", GUEST, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR ('' = ? OR '' = ?)))",
	  "[\"agent\",\"admin\"]" },
	{ "model_selection", ALICE, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND (json_extract(records.data, '$.user') = ? OR (? = ? OR ? = ?)))",
	  "[\"u_alice\",\"u_alice\",\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "model_selection", SUPER, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR ('' = ? OR '' = ?)))",
	  "[\"agent\",\"admin\"]" },
	{ "model_selection", GUEST, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "model_selection", ALICE, "@request.auth.id != \"\" && user = @request.auth.id",
	  "(? IS NOT '' AND json_extract(records.data, '$.user') = ?)",
	  "[\"u_alice\",\"u_alice\"]" },
	{ "model_selection", SUPER, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "model_selection", GUEST, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR '' = ?))",
	  "[\"admin\"]" },
	{ "model_selection", ALICE, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND (json_extract(records.data, '$.user') = ? OR ? = ?))",
	  "[\"u_alice\",\"u_alice\",\"admin\",\"admin\"]" },
	{ "model_selection", SUPER, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR '' = ?))",
	  "[\"admin\"]" },
	{ "llm_providers", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "llm_providers", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "llm_providers", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "llm_providers", GUEST, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "llm_providers", ALICE, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "(? = ? OR ? = ?)",
	  "[\"admin\",\"agent\",\"admin\",\"admin\"]" },
	{ "llm_providers", SUPER, "(@request.auth.role = \"agent\" || @request.auth.role = \"admin\")",
	  "('' = ? OR '' = ?)",
	  "[\"agent\",\"admin\"]" },
	{ "llm_providers", GUEST, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "llm_providers", ALICE, "@request.auth.role = \"admin\"",
	  "? = ?",
	  "[\"admin\",\"admin\"]" },
	{ "llm_providers", SUPER, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "notification_rules", GUEST, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "notification_rules", ALICE, "@request.auth.id != \"\" && user = @request.auth.id",
	  "(? IS NOT '' AND json_extract(records.data, '$.user') = ?)",
	  "[\"u_alice\",\"u_alice\"]" },
	{ "notification_rules", SUPER, "@request.auth.id != \"\" && user = @request.auth.id",
	  "('' IS NOT '' AND (json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL))",
	  "[]" },
	{ "cron_jobs", GUEST, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR '' = ?))",
	  "[\"admin\"]" },
	{ "cron_jobs", ALICE, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "(? IS NOT '' AND (json_extract(records.data, '$.user') = ? OR ? = ?))",
	  "[\"u_alice\",\"u_alice\",\"admin\",\"admin\"]" },
	{ "cron_jobs", SUPER, "@request.auth.id != \"\" && (user = @request.auth.id || @request.auth.role = \"admin\")",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) OR '' = ?))",
	  "[\"admin\"]" },
	{ "cron_jobs", GUEST, "@request.auth.id != \"\" && user = @request.auth.id && (chat = \"\" || chat.user = @request.auth.id)",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) AND ((json_extract(records.data, '$.chat') = '' OR json_extract(records.data, '$.chat') IS NULL) OR ((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL))))",
	  "[]" },
	{ "cron_jobs", ALICE, "@request.auth.id != \"\" && user = @request.auth.id && (chat = \"\" || chat.user = @request.auth.id)",
	  "(? IS NOT '' AND (json_extract(records.data, '$.user') = ? AND ((json_extract(records.data, '$.chat') = '' OR json_extract(records.data, '$.chat') IS NULL) OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = ?)))",
	  "[\"u_alice\",\"u_alice\",\"u_alice\"]" },
	{ "cron_jobs", SUPER, "@request.auth.id != \"\" && user = @request.auth.id && (chat = \"\" || chat.user = @request.auth.id)",
	  "('' IS NOT '' AND ((json_extract(records.data, '$.user') = '' OR json_extract(records.data, '$.user') IS NULL) AND ((json_extract(records.data, '$.chat') = '' OR json_extract(records.data, '$.chat') IS NULL) OR ((SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) = '' OR (SELECT json_extract(r1.data, '$.user') FROM records r1 WHERE r1.collection = 'chats' AND r1.id = json_extract(records.data, '$.chat')) IS NULL))))",
	  "[]" },
	{ "containers", GUEST, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "containers", ALICE, "@request.auth.id != \"\"",
	  "? IS NOT ''",
	  "[\"u_alice\"]" },
	{ "containers", SUPER, "@request.auth.id != \"\"",
	  "'' IS NOT ''",
	  "[]" },
	{ "reconcile_status", GUEST, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
	{ "reconcile_status", ALICE, "@request.auth.role = \"admin\"",
	  "? = ?",
	  "[\"admin\",\"admin\"]" },
	{ "reconcile_status", SUPER, "@request.auth.role = \"admin\"",
	  "'' = ?",
	  "[\"admin\"]" },
};

static const struct gorder gorders[] = {
	{ "chats", GUEST, "",
	  "records.created ASC, records.id ASC" },
	{ "chats", GUEST, "-created",
	  "records.created DESC, records.id ASC" },
	{ "chats", GUEST, "created",
	  "records.created ASC, records.id ASC" },
	{ "tool_permissions", GUEST, "priority,-tool",
	  "COALESCE(json_extract(records.data, '$.priority'), 0) ASC, json_extract(records.data, '$.tool') DESC, records.id ASC" },
	{ "tool_permissions", GUEST, " +active , -id ",
	  "COALESCE(json_extract(records.data, '$.active'), 0) ASC, records.id DESC" },
	{ "chats", GUEST, "user,-updated",
	  "json_extract(records.data, '$.user') ASC, records.updated DESC, records.id ASC" },
	{ "chats", GUEST, "@random",
	  "RANDOM(), records.id ASC" },
	{ "chats", GUEST, "-@random,title",
	  "RANDOM(), json_extract(records.data, '$.title') ASC, records.id ASC" },
	{ "chats", GUEST, "id",
	  "records.id ASC" },
	{ "chats", GUEST, "-id,created",
	  "records.id DESC, records.created ASC" },
	{ "chats", GUEST, "turn,description,-agent",
	  "json_extract(records.data, '$.turn') ASC, json_extract(records.data, '$.description') ASC, json_extract(records.data, '$.agent') DESC, records.id ASC" },
	{ "mcp_servers", SUPER, "-catalog,name",
	  "json_extract(records.data, '$.catalog') DESC, records.name ASC, records.id ASC" },
	{ "mcp_servers", GUEST, "-name,reason",
	  "records.name DESC, json_extract(records.data, '$.reason') ASC, records.id ASC" },
	{ "ai_agents", GUEST, "name,-temperature,is_init",
	  "records.name ASC, COALESCE(json_extract(records.data, '$.temperature'), 0) DESC, COALESCE(json_extract(records.data, '$.is_init'), 0) ASC, records.id ASC" },
	{ "users", GUEST, "email,-verified,name",
	  "json_extract(records.data, '$.email') ASC, COALESCE(json_extract(records.data, '$.verified'), 0) DESC, json_extract(records.data, '$.name') ASC, records.id ASC" },
};

static struct schema *gschema;
static json_t *galice, *gbob, *gbody;

static void gsetup(void)
{
	struct err e = ERR_INIT;

	cr_assert_eq(schema_load_default(&gschema, &e), 0, "%s", e.msg);
	galice = json_pack("{s:s, s:s, s:s, s:b}", "id", "u_alice", "role",
			   "admin", "name", "Alice", "verified", 1);
	gbob = json_pack("{s:s, s:s, s:s}", "id", "u_bob", "role", "user",
			 "name", "Bob");
	gbody = json_pack("{s:s, s:b, s:s, s:s, s:{s:[i]}}", "title", "x",
			  "archived", 1, "user", "u_bob", "tags", "t%",
			  "parts", "k", 1);
	cr_assert(galice && gbob && gbody);
}

static void gteardown(void)
{
	json_decref(galice);
	json_decref(gbob);
	json_decref(gbody);
	schema_free(gschema);
}

static struct filter_auth gauth(enum who w)
{
	struct filter_auth a = { false, NULL, NULL };

	if (w == ALICE || w == BODY)
		a.record = galice;
	if (w == BOB)
		a.record = gbob;
	if (w == SUPER)
		a.superuser = true;
	if (w == BODY)
		a.body = gbody;
	return a;
}

/* The WHERE body and binds the store runs for filter, as the store
 * builds them (query_sql_build()). */
static int gwhere_sql(const struct collection *c, const char *filter,
		      const struct filter_auth *a, struct buf *sql,
		      json_t *args, struct err *e)
{
	struct query_pred *p = NULL;
	struct query_sql qs;
	int rc;

	rc = filter_compile(gschema, c, filter, a, &p, e);
	if (rc) {
		query_pred_free(p);
		return rc;
	}
	rc = query_sql_build(&qs, p, NULL, e);
	if (!rc && (buf_add(sql, qs.where.ptr, qs.where.len) ||
		    json_array_extend(args, qs.args)))
		rc = ERR_NOMEM;
	query_sql_release(&qs);
	query_pred_free(p);
	return rc;
}

/* The ORDER BY body the store runs for sort. */
static int gorder_sql(const struct collection *c, const char *sort,
		      const struct filter_auth *a, struct buf *sql,
		      struct err *e)
{
	struct query_sort o;
	struct query_sql qs;
	int rc;

	rc = filter_sort_compile(c, sort, a, &o, e);
	if (rc)
		return rc;
	rc = query_sql_build(&qs, NULL, &o, e);
	if (!rc)
		rc = buf_add(sql, qs.order.ptr, qs.order.len);
	query_sql_release(&qs);
	return rc;
}

TestSuite(query_sql, .init = gsetup, .fini = gteardown);

Test(query_sql, filters_give_the_same_sql_and_binds)
{
	size_t i;

	for (i = 0; i < sizeof(gwheres) / sizeof(gwheres[0]); i++) {
		const struct gwhere *k = &gwheres[i];
		const struct collection *c = schema_find(gschema, k->collection);
		struct filter_auth a = gauth(k->who);
		struct buf sql = BUF_INIT;
		struct err e = ERR_INIT;
		json_t *args = json_array();
		char *binds = NULL;

		cr_assert_not_null(c, "%s", k->collection);
		cr_expect_eq(gwhere_sql(c, k->filter, &a, &sql, args, &e), 0,
			     "%s [%d]: %s", k->filter, k->who, e.msg);
		binds = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
		cr_expect_str_eq(sql.ptr, k->sql, "%s [%d]", k->filter, k->who);
		cr_expect_str_eq(binds, k->binds, "%s [%d]", k->filter, k->who);
		free(binds);
		json_decref(args);
		buf_release(&sql);
	}
}

Test(query_sql, sorts_give_the_same_sql)
{
	size_t i;

	for (i = 0; i < sizeof(gorders) / sizeof(gorders[0]); i++) {
		const struct gorder *k = &gorders[i];
		const struct collection *c = schema_find(gschema, k->collection);
		struct filter_auth a = gauth(k->who);
		struct buf sql = BUF_INIT;
		struct err e = ERR_INIT;

		cr_assert_not_null(c, "%s", k->collection);
		cr_expect_eq(gorder_sql(c, k->sort, &a, &sql, &e), 0, "%s: %s",
			     k->sort, e.msg);
		cr_expect_str_eq(sql.ptr, k->sql, "%s", k->sort);
		buf_release(&sql);
	}
}

/* The SQL of one hand-built tree, with its binds as compact JSON. */
static void gtree(struct query_pred *p, const char *sql, const char *binds)
{
	struct buf b = BUF_INIT;
	struct err e = ERR_INIT;
	json_t *args = json_array();
	char *got;

	cr_assert_not_null(p);
	cr_assert_eq(query_sql_where(p, &b, args, &e), 0, "%s", e.msg);
	got = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
	cr_expect_str_eq(b.ptr, sql);
	cr_expect_str_eq(got, binds, "%s", sql);
	free(got);
	json_decref(args);
	buf_release(&b);
	query_pred_free(p);
}

/* The nodes only callers build: conditions compiled apart, a record given
 * by value, not, case-insensitive equality, typed literals. */
Test(query_sql, hand_built_trees)
{
	struct query_pred *not = query_pred_new(QUERY_NOT);

	gtree(query_and(query_cmp(QUERY_EQ, query_column("id"),
				  query_literal(json_string("abc"))),
			query_pred_new(QUERY_TRUE)),
	      "(records.id = ?) AND (1)", "[\"abc\"]");
	gtree(query_cmp(QUERY_EQ_NOCASE, query_field("email", false),
			query_literal(json_string("A@x.io"))),
	      "json_extract(records.data, '$.email') = ? COLLATE NOCASE",
	      "[\"A@x.io\"]");
	gtree(query_cmp(QUERY_GTE, query_field("n", true),
			query_literal(json_true())),
	      "COALESCE(json_extract(records.data, '$.n'), 0) >= ?", "[1]");
	cr_assert_eq(query_pred_add(not, query_cmp(QUERY_LIKE,
			query_column("name"), query_literal(json_string("a_")))),
		     0);
	gtree(not, "NOT (records.name LIKE ? ESCAPE '\\')", "[\"%a\\\\_%\"]");
	gtree(query_on_record(json_pack("[s,s,s,s,s,s,i,i,s,s]", "chats",
					"c1", "c1", "{}", "{}", "{}", 1, 7,
					"t0", "t1"),
			      query_cmp(QUERY_NEQ, query_column("id"),
					query_literal(json_string("x")))),
	      "EXISTS (WITH snap(collection, id, name, data, labels, status, "
	      "generation, revision, created, updated) AS (VALUES (?, ?, ?, "
	      "?, ?, ?, ?, ?, ?, ?)) SELECT 1 FROM snap AS records WHERE "
	      "(records.id IS NOT ?))",
	      "[\"chats\",\"c1\",\"c1\",\"{}\",\"{}\",\"{}\",1,7,\"t0\","
	      "\"t1\",\"x\"]");
}

/* What the store refuses, and leaves untouched when it does. */
Test(query_sql, bad_trees_are_refused)
{
	struct query_pred *bad[] = {
		query_cmp(QUERY_EQ, query_column("data"),
			  query_literal(json_null())),
		query_cmp(QUERY_EQ, query_field("a'b", false),
			  query_literal(json_null())),
		query_on_record(json_array(), query_pred_new(QUERY_TRUE)),
		query_pred_new(QUERY_AND),
	};
	struct query_sort s = { 0 };
	struct buf b = BUF_INIT;
	struct err e = ERR_INIT;
	json_t *args = json_array();
	size_t i;

	buf_puts(&b, "keep");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_not_null(bad[i]);
		cr_expect_eq(query_sql_where(bad[i], &b, args, &e), ERR_INVALID,
			     "tree %zu", i);
		cr_expect_str_eq(b.ptr, "keep");
		cr_expect_eq(json_array_size(args), 0);
		query_pred_free(bad[i]);
	}
	cr_assert_eq(query_sort_add(&s, QUERY_SORT_FIELD, "x;y", false, false),
		     0);
	cr_expect_eq(query_sql_order(&s, &b, &e), ERR_INVALID);
	cr_expect_str_eq(b.ptr, "keep");
	while (query_sort_add(&s, QUERY_SORT_RANDOM, NULL, false, false) == 0)
		;
	cr_expect_eq(s.n, QUERY_MAX_SORT);
	json_decref(args);
	buf_release(&b);
}

/* The default order, the by-name order, and the count cache's key. */
Test(query_sql, orders_and_keys)
{
	struct buf b = BUF_INIT;
	struct err e = ERR_INIT;
	struct query_pred *p;
	char *key;

	cr_assert_eq(query_sql_order(NULL, &b, &e), 0);
	cr_expect_str_eq(b.ptr, "created, id");
	buf_reset(&b);
	cr_assert_eq(query_sql_order(&query_by_name, &b, &e), 0);
	cr_expect_str_eq(b.ptr, "records.name ASC, records.id ASC");
	buf_release(&b);
	key = query_sql_key("chats", NULL);
	cr_expect_str_eq(key, "chats\n\n[]");
	free(key);
	p = query_cmp(QUERY_LT, query_column("created"),
		      query_literal(json_real(2.5)));
	key = query_sql_key("chats", p);
	cr_expect_str_eq(key, "chats\nrecords.created < ?\n[2.5]");
	free(key);
	query_pred_free(p);
}
