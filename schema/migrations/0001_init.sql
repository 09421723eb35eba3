-- 0001_init.sql - the store's tables (see controller/store.h).
--
-- Run once by store_open() inside its own transaction; the store then sets
-- PRAGMA user_version = 1. Unique and relation indexes derived from
-- schema/collections.json are not created here: store_open() keeps them in
-- step with the schema (index names u_*, i_*, r_*).

-- Every record of every collection. data, labels and status hold JSON
-- objects; revision is the change-log row of the record's last change.
CREATE TABLE records (
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	name       TEXT NOT NULL,
	data       TEXT NOT NULL DEFAULT '{}',
	labels     TEXT NOT NULL DEFAULT '{}',
	status     TEXT NOT NULL DEFAULT '{}',
	generation INTEGER NOT NULL DEFAULT 1,
	revision   INTEGER NOT NULL,
	created    TEXT NOT NULL,
	updated    TEXT NOT NULL,
	PRIMARY KEY (collection, id)
) WITHOUT ROWID;

CREATE UNIQUE INDEX records_name ON records (collection, name);
CREATE INDEX records_created ON records (collection, created);

-- One row per change; the row id is the global revision. AUTOINCREMENT so
-- that a revision is never reused, even after retention trims the log.
CREATE TABLE changelog (
	revision   INTEGER PRIMARY KEY AUTOINCREMENT,
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	action     TEXT NOT NULL,
	record     TEXT NOT NULL,
	time       TEXT NOT NULL
);

-- Store-level facts: schema_version, schema_version_previous, ...
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value
);

-- The members recorded by the last apply of each apply set (for pruning).
CREATE TABLE applysets (
	name       TEXT NOT NULL,
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	PRIMARY KEY (name, collection, id)
) WITHOUT ROWID;

CREATE INDEX applysets_member ON applysets (collection, id);
