-- Remote actors we have fetched: what delivery and signature checks need, refreshed when stale.
CREATE TABLE remote_actors (
    id INTEGER PRIMARY KEY NOT NULL,
    ap_id TEXT NOT NULL UNIQUE,
    domain TEXT NOT NULL,
    kind TEXT NOT NULL,
    preferred_username TEXT,
    name TEXT,
    inbox TEXT,
    shared_inbox TEXT,
    -- JSON array of {"id", "pem"}: an actor may publish several keys.
    keys_json TEXT NOT NULL,
    fetched_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
CREATE INDEX remote_actors_domain_idx ON remote_actors (domain);
