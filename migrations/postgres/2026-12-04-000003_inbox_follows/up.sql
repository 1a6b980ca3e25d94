-- Activities we have processed, by id (or by a hash of the body when a server sends none), so a
-- redelivery has no second effect. Pruned after some days.
CREATE TABLE received_activities (
    key TEXT PRIMARY KEY NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX received_activities_received_idx ON received_activities (received_at);

-- Remote actors following a local actor (user or group).
CREATE TABLE followers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    local_name TEXT NOT NULL REFERENCES local_names (name) ON DELETE CASCADE,
    actor_ap_id TEXT NOT NULL,
    inbox TEXT NOT NULL,
    follow_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (local_name, actor_ap_id)
);
