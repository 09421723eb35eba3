/*
 * embedded.c - pulls schema/ files into .rodata with the assembler's
 * .incbin, each followed by a NUL byte (see embedded.h). The Makefile makes
 * this object depend on the embedded files.
 */
#include "embedded.h"

EMBED(pc_schema_json, "schema/collections.json");
EMBED(pc_mig_0001, "schema/migrations/0001_init.sql");
EMBED(pc_mig_0002, "schema/migrations/0002_owners.sql");
EMBED(pc_mig_0003, "schema/migrations/0003_actor.sql");
EMBED(pc_mig_0004, "schema/migrations/0004_digest.sql");
EMBED(pc_mig_0005, "schema/migrations/0005_digest_row.sql");
EMBED(pc_mig_0006, "schema/migrations/0006_text_digest.sql");

#define FILE_ENTRY(path, sym) { path, sym, sym##_end }

const struct embedded_file embedded_schema =
	FILE_ENTRY("schema/collections.json", pc_schema_json);

const struct embedded_file embedded_migrations[] = {
	FILE_ENTRY("schema/migrations/0001_init.sql", pc_mig_0001),
	FILE_ENTRY("schema/migrations/0002_owners.sql", pc_mig_0002),
	FILE_ENTRY("schema/migrations/0003_actor.sql", pc_mig_0003),
	FILE_ENTRY("schema/migrations/0004_digest.sql", pc_mig_0004),
	FILE_ENTRY("schema/migrations/0005_digest_row.sql", pc_mig_0005),
	FILE_ENTRY("schema/migrations/0006_text_digest.sql", pc_mig_0006),
};
const size_t embedded_nmigrations =
	sizeof(embedded_migrations) / sizeof(embedded_migrations[0]);
