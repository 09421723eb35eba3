-- 0002_owners.sql - field ownership (see store_txn_owners_get() in
-- controller/store/store.h, controller/store/store_owners.c).
--
-- One row per record that has owned fields: owners is a JSON object from
-- a top-level field name to the manager that set it last ("apply:SET",
-- "user:ID", "superuser:ID", "guest", "server"). Written in the same
-- transaction as the record; a deleted record takes its row with it.
CREATE TABLE field_owners (
	collection TEXT NOT NULL,
	id         TEXT NOT NULL,
	owners     TEXT NOT NULL DEFAULT '{}',
	PRIMARY KEY (collection, id)
) WITHOUT ROWID;

CREATE TRIGGER field_owners_forget AFTER DELETE ON records
BEGIN
	DELETE FROM field_owners
	 WHERE collection = old.collection AND id = old.id;
END;
