-- Audit events commit to the request state they produce (see src/audit.rs).
-- Keep in step with ../sqlite.
--
-- `format` 1: an event written before this migration, hashed without state.
-- `format` 2: `state` holds the request row the event left behind, as JSON,
-- and the hash covers it, so `audit verify` can replay the trail and compare
-- it with the `requests` table. Adding columns fires no row triggers.
ALTER TABLE audit_events ADD COLUMN format BIGINT NOT NULL DEFAULT 1 CHECK (format IN (1, 2));
ALTER TABLE audit_events ADD COLUMN state TEXT CHECK ((format = 2) = (state IS NOT NULL));
CREATE INDEX audit_events_by_request ON audit_events (request_id, seq);

-- 1 once every request written before this migration has a format-2 event
-- recording its state as found (the store appends those on first start).
ALTER TABLE store_head ADD COLUMN states_sealed BIGINT NOT NULL DEFAULT 0 CHECK (states_sealed IN (0, 1));
