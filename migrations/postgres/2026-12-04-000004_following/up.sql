-- Remote actors a local actor follows (outgoing Follow). `state` is pending until the remote
-- side sends Accept.
CREATE TABLE following (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    local_name TEXT NOT NULL REFERENCES local_names (name) ON DELETE CASCADE,
    target_ap_id TEXT NOT NULL,
    target_inbox TEXT NOT NULL,
    follow_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (local_name, target_ap_id)
);
