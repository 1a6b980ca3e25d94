-- The delivery queue (replaces the generic job kind `federation.deliver`): an activity is stored
-- once, with one row per receiving inbox (shared inboxes collapse many followers into one POST),
-- and per receiving instance a health record that drives dead-instance skipping and Retry-After.
-- Queued generic delivery jobs from before this migration are dropped: no release carried them.
DELETE FROM jobs WHERE kind = 'federation.deliver';

CREATE TABLE outgoing_activities (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ap_id TEXT NOT NULL,
    -- The local actor (owner in actor_keys) whose key signs the deliveries.
    owner TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_id BIGINT NOT NULL REFERENCES outgoing_activities (id) ON DELETE CASCADE,
    inbox TEXT NOT NULL,
    -- host[:port] of the inbox: the unit of concurrency limits and health.
    host TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Due time; a claim pushes it forward by the lease, so a crashed worker's rows come back.
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (activity_id, inbox)
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at, id);
CREATE INDEX deliveries_host_idx ON deliveries (host);

CREATE TABLE instances (
    host TEXT PRIMARY KEY NOT NULL,
    -- First failure since the last success; NULL while the instance answers.
    failing_since TIMESTAMP,
    last_success_at TIMESTAMP,
    last_error TEXT,
    -- Nothing is sent before this time (Retry-After, or the next probe of a dead instance).
    paused_until TIMESTAMP,
    dead BOOLEAN NOT NULL DEFAULT false
);

ALTER TABLE followers ADD COLUMN shared_inbox TEXT;
-- 'accepted', or 'pending' while the followed user has not approved the request.
ALTER TABLE followers ADD COLUMN state TEXT NOT NULL DEFAULT 'accepted';
ALTER TABLE users ADD COLUMN manually_approves_followers BOOLEAN NOT NULL DEFAULT false;
