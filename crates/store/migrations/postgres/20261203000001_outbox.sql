-- Notifications (see src/outbox.rs). Keep in step with ../sqlite.

-- What to tell people about: one row per audit event, written in the same
-- transaction as the event (`audit:{seq}`), and one per coming expiry of a
-- grant (`expiry:{request id}:{expires_at}`), enqueued by the notifier. The
-- notifier expands each row into deliveries once (`expanded_at`). The audit
-- chain is untouched: this table only points at it.
CREATE TABLE outbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL CHECK (kind IN ('audit', 'expiry')),
    audit_seq   BIGINT  NULL,
    request_id  TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expanded_at BIGINT  NULL,
    CHECK ((kind = 'audit') = (audit_seq IS NOT NULL))
);
CREATE INDEX outbox_unexpanded ON outbox (id) WHERE expanded_at IS NULL;

-- One message to one recipient over one channel, rendered once so every
-- retry sends the same bytes; `key` is also its idempotency key. A claimed
-- delivery's `next_attempt_at` is pushed past a hold time first, so one cut
-- short by a kill is retried after it.
CREATE TABLE deliveries (
    key             TEXT    NOT NULL PRIMARY KEY,
    outbox_id       BIGINT  NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    channel         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        BIGINT  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT  NOT NULL,
    last_error      TEXT    NULL,
    last_error_at   BIGINT  NULL,
    delivered_at    BIGINT  NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_channel ON deliveries (channel, status);
CREATE INDEX deliveries_by_outbox ON deliveries (outbox_id);
