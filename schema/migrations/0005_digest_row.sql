-- 0005_digest_row.sql - apply digests move into the ownership row (see
-- store_txn_declared_put() in controller/store/store.h).
--
-- An apply wrote two side rows per record, its ownership and its digest,
-- each one more B-tree insert per record of a first apply. They share a
-- key and a writer, so they become one row: digest is what the last apply
-- of the record declared (NULL: none), digest_revision the record's
-- revision right after that apply. Another writer's ownership write
-- replaces the row without a digest; it also moved the record's revision,
-- so the digest could no longer match anyway. The digests kept in
-- apply_digests move over (a record with a digest and no ownership gets
-- an empty ownership row), then that table goes.
ALTER TABLE field_owners ADD COLUMN digest BLOB;
ALTER TABLE field_owners ADD COLUMN digest_revision INTEGER;

INSERT INTO field_owners (collection, id, owners, digest, digest_revision)
SELECT collection, id, '{}', digest, revision FROM apply_digests WHERE true
ON CONFLICT (collection, id) DO UPDATE
   SET digest = excluded.digest, digest_revision = excluded.digest_revision;

DROP TRIGGER apply_digests_forget;
DROP TABLE apply_digests;
