-- pomerium-jit store, PostgreSQL. Times are unix milliseconds (UTC); JSON is
-- text (not jsonb: the audit hash covers the exact stored bytes).
-- Keep in step with ../sqlite: the same tables, constraints and names.

-- One row per access request. The CHECKs make the columns agree with the
-- status, so a half-written state cannot be stored.
CREATE TABLE requests (
    id           TEXT   NOT NULL PRIMARY KEY,
    email        TEXT   NOT NULL,
    reason       TEXT,
    requested_at BIGINT NOT NULL,
    requested_by TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    approved_by  TEXT,
    approved_at  BIGINT,
    starts_at    BIGINT,
    expires_at   BIGINT,
    ended_by     TEXT,
    ended_at     BIGINT,
    CONSTRAINT requests_status_known
        CHECK (status IN ('pending', 'active', 'expired', 'revoked', 'rejected', 'cancelled')),
    CONSTRAINT requests_grant_iff_approved
        CHECK ((status IN ('active', 'expired', 'revoked'))
               = (approved_by IS NOT NULL AND approved_at IS NOT NULL AND expires_at IS NOT NULL)),
    CONSTRAINT requests_start_needs_grant
        CHECK (starts_at IS NULL OR status IN ('active', 'expired', 'revoked')),
    CONSTRAINT requests_ender_iff_ended_by_someone
        CHECK ((status IN ('revoked', 'rejected', 'cancelled')) = (ended_by IS NOT NULL)),
    CONSTRAINT requests_end_iff_final
        CHECK ((status IN ('pending', 'active')) = (ended_at IS NULL))
);

-- At most one open (pending or active) request per email, whatever the code does.
CREATE UNIQUE INDEX requests_one_open_per_email ON requests (email)
    WHERE status IN ('pending', 'active');
CREATE INDEX requests_by_email ON requests (email, requested_at);
CREATE INDEX requests_active_expiry ON requests (expires_at) WHERE status = 'active';
CREATE INDEX requests_ended ON requests (ended_at, id) WHERE ended_at IS NOT NULL;

-- The append-only, hash-chained audit trail. `seq` is gapless from 1;
-- `hash` = hex SHA-256(previous hash ‖ canonical event), see src/audit.rs.
CREATE TABLE audit_events (
    seq        BIGINT NOT NULL PRIMARY KEY CHECK (seq > 0),
    at         BIGINT NOT NULL,
    actor      TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    request_id TEXT   NOT NULL REFERENCES requests (id),
    details    TEXT   NOT NULL,
    hash       TEXT   NOT NULL
);
CREATE INDEX audit_events_by_subject ON audit_events (subject, seq);

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- The single head row: the end of the audit chain and the desired generation
-- (bumped by every committed change of request state). Writers lock it first.
CREATE TABLE store_head (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    audit_seq  BIGINT  NOT NULL CHECK (audit_seq >= 0),
    audit_hash TEXT    NOT NULL,
    generation BIGINT  NOT NULL CHECK (generation >= 0)
);
INSERT INTO store_head (id, audit_seq, audit_hash, generation)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

-- What the reconciler last applied to each Pomerium Zero policy.
CREATE TABLE sync_state (
    policy_name        TEXT   NOT NULL PRIMARY KEY,
    policy_id          TEXT,
    base_ppl           TEXT,
    applied_generation BIGINT NOT NULL DEFAULT 0 CHECK (applied_generation >= 0),
    last_attempt_at    BIGINT,
    last_success_at    BIGINT,
    last_error         TEXT
);

-- Named leases: one writer across replicas.
CREATE TABLE leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
