-- 0003_actor.sql - who wrote each change (see store_txn_set_writer() in
-- controller/store/store.h).
--
-- actor names the writer of the change-log row: "superuser:EMAIL",
-- "user:ID:EMAIL", "guest", "apply:WHO", "reconciler/NAME", "cli:USER",
-- "server", ... (the layers above compose it). Rows written before this
-- migration have none (NULL) and read as having no actor.
ALTER TABLE changelog ADD COLUMN actor TEXT;
