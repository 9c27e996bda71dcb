-- The PPL of the base and of each intent is kept deflated (see
-- src/packed.rs): at thousands of grants it is a megabyte that packs into
-- some sixty kilobytes, and every copy on its way into the database was a
-- megabyte. Rows written before this keep their text, which is read as
-- before; new rows hold the packed form only.
ALTER TABLE sync_state ADD COLUMN base_packed BLOB;

-- SQLite cannot drop a NOT NULL, so the table is made again, its rows and
-- ids kept (an unsettled intent must survive the upgrade).
CREATE TABLE sync_intents_packed (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    policy_name TEXT    NOT NULL,
    ppl         TEXT,
    packed      BLOB,
    digest      TEXT,
    generation  INTEGER NOT NULL CHECK (generation >= 0),
    epoch       INTEGER NOT NULL CHECK (epoch >= 0),
    created_at  INTEGER NOT NULL,
    CHECK ((ppl IS NULL) <> (packed IS NULL))
);
INSERT INTO sync_intents_packed (id, policy_name, ppl, digest, generation, epoch, created_at)
SELECT id, policy_name, ppl, digest, generation, epoch, created_at FROM sync_intents;
DROP TABLE sync_intents;
ALTER TABLE sync_intents_packed RENAME TO sync_intents;
CREATE INDEX sync_intents_by_policy ON sync_intents (policy_name, id);
