-- Fencing and write intents for the reconciler (see src/sync.rs).
-- Keep in step with ../sqlite.

-- The lease's fencing token: grows by one each time a new holder takes the
-- lease, never goes back (a released lease keeps its row and epoch), so a
-- paused replica's writes are refused once another has taken over.
ALTER TABLE leases ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0 CHECK (epoch >= 0);

-- PPL the reconciler was about to write, recorded before each write to Zero.
-- While its answer is unknown (lost, timed out, cut short), finding that PPL
-- in Zero means the app wrote it, not that someone edited the console.
CREATE TABLE sync_intents (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    policy_name TEXT   NOT NULL,
    ppl         TEXT   NOT NULL,
    generation  BIGINT NOT NULL CHECK (generation >= 0),
    epoch       BIGINT NOT NULL CHECK (epoch >= 0),
    created_at  BIGINT NOT NULL
);
CREATE INDEX sync_intents_by_policy ON sync_intents (policy_name, id);
