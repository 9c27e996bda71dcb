-- Several resources, and what a request asks beyond a reason (see
-- src/rows.rs). Keep in step with ../postgres.
--
-- Every request written before belongs to the resource `default`, the one
-- a deployment without a config file has. Audit states written before lack
-- these columns and are read with the same defaults, so the chain and its
-- replay stay intact.
ALTER TABLE requests ADD COLUMN resource TEXT NOT NULL DEFAULT 'default';
-- The requester's proposed grant length in minutes, scheduled start, ticket.
ALTER TABLE requests ADD COLUMN requested_duration INTEGER CHECK (requested_duration > 0);
ALTER TABLE requests ADD COLUMN requested_start INTEGER;
ALTER TABLE requests ADD COLUMN ticket TEXT;
-- JSON: approvals so far toward the open decision, `[{"by": email, "at": ms}]`.
ALTER TABLE requests ADD COLUMN approvals TEXT NOT NULL DEFAULT '[]';
-- JSON: an asked extension of active access, `{"duration": minutes, "reason": text, "asked_at": ms}`.
ALTER TABLE requests ADD COLUMN extension TEXT CHECK (extension IS NULL OR status = 'active');
ALTER TABLE requests ADD COLUMN extensions INTEGER NOT NULL DEFAULT 0 CHECK (extensions >= 0);
-- The approver's comment on a rejection or revocation.
ALTER TABLE requests ADD COLUMN comment TEXT;

-- At most one open request per person and resource; several resources at once.
DROP INDEX requests_one_open_per_email;
CREATE UNIQUE INDEX requests_one_open_per_resource ON requests (resource, email)
    WHERE status IN ('pending', 'active');
CREATE INDEX requests_open_by_resource ON requests (resource, requested_at)
    WHERE status IN ('pending', 'active');

-- The history page filters events by time.
CREATE INDEX audit_events_by_time ON audit_events (at, seq);
