-- 0006_text_digest.sql - the text an apply declared a record with (see
-- store_txn_text_find() in controller/store/store.h).
--
-- text_digest is a digest of the manifest text of the record's last apply
-- (its piece of the file, with who applied it), next to the digest of
-- what that text meant (digest) and under the same digest_revision: an
-- unchanged re-apply finds each piece by it, without parsing. The
-- partial index holds the rows that have one, with the revision to
-- compare (one B-tree less per lookup).
--
-- A relation in a manifest names its target; a record renamed can make
-- the same name mean another record. meta.renames counts renames, and
-- the layer above puts it into what it digests (apply.c): after a rename,
-- no text digest matches until a full apply has stored new ones.
ALTER TABLE field_owners ADD COLUMN text_digest BLOB;

CREATE INDEX field_owners_text ON field_owners (text_digest, digest_revision)
	WHERE text_digest IS NOT NULL;

INSERT OR IGNORE INTO meta (key, value) VALUES ('renames', 0);

CREATE TRIGGER records_renamed AFTER UPDATE OF name ON records
	WHEN old.name IS NOT new.name
BEGIN
	UPDATE meta SET value = value + 1 WHERE key = 'renames';
END;
