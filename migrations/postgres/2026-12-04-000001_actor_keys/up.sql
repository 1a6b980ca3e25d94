-- RSA-2048 key pairs of local ActivityPub actors, generated when the actor is created and never
-- changed. `owner` is a local name (user or group, see local_names) or '@instance' for the
-- instance actor.
CREATE TABLE actor_keys (
    owner TEXT PRIMARY KEY NOT NULL,
    public_key_pem TEXT NOT NULL,
    private_key_pem TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
