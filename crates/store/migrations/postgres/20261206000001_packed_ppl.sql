-- The PPL of the base and of each intent is kept deflated (see
-- src/packed.rs): at thousands of grants it is a megabyte that packs into
-- some sixty kilobytes, and every copy on its way into the database was a
-- megabyte. Rows written before this keep their text, which is read as
-- before; new rows hold the packed form only.
ALTER TABLE sync_state ADD COLUMN base_packed BYTEA;
ALTER TABLE sync_intents
    ALTER COLUMN ppl DROP NOT NULL,
    ADD COLUMN packed BYTEA,
    ADD CONSTRAINT sync_intents_one_form CHECK ((ppl IS NULL) <> (packed IS NULL));
