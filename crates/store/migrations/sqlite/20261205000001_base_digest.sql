-- SHA-256 digests, in hex, of `sync_state.base_ppl` and of each intent's
-- `ppl`. A sync that finds Pomerium Zero holding exactly the base (the
-- usual case) learns it from the digest instead of reading the base, a
-- megabyte at thousands of grants; a success that settles an intent copies
-- the intent's text and digest here inside the database instead of sending
-- the text again. NULL for rows written before this migration: the next
-- success records a digest.
ALTER TABLE sync_state ADD COLUMN base_digest TEXT;
ALTER TABLE sync_intents ADD COLUMN digest TEXT;
