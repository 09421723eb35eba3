-- 0004_digest.sql - apply digests (see store_txn_digest_match() in
-- controller/store/store.h, controller/store/store_digest.c).
--
-- One row per record a manifest apply declared: digest is what the last
-- apply of it declared (made by controller/apply.c: the manager, the
-- actor, the schema, the resolved document), revision the record's
-- revision right after that apply. A re-apply of the same document finds
-- it unchanged without reading or building the record, but only while the
-- record's revision is still that one: any other write - an app edit, a
-- status, another apply set - makes the next apply take the full path.
-- A deleted record takes its row with it. Older stores start without
-- rows: their first apply takes the full path and fills them.
CREATE TABLE apply_digests (
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	digest     BLOB NOT NULL,
	revision   INTEGER NOT NULL,
	PRIMARY KEY (collection, id)
) WITHOUT ROWID;

CREATE TRIGGER apply_digests_forget AFTER DELETE ON records
BEGIN
	DELETE FROM apply_digests
	 WHERE collection = old.collection AND id = old.id;
END;
