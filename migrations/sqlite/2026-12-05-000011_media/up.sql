-- Uploaded images (avatars, banners), stored in the database so that every `agora` process on a
-- shared PostgreSQL serves them and a database backup holds them. Rows keep only the re-encoded
-- bytes (no metadata) and are named by their SHA-256, so one picture used twice is stored once.
CREATE TABLE media (
    id INTEGER PRIMARY KEY NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    content_type TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);
-- Which image a user or group shows as its avatar or banner, by local name (users and groups
-- share the name space).
CREATE TABLE profile_images (
    owner TEXT NOT NULL REFERENCES local_names (name) ON DELETE CASCADE,
    -- 'avatar' or 'banner'
    purpose TEXT NOT NULL,
    media_id BIGINT NOT NULL REFERENCES media (id),
    PRIMARY KEY (owner, purpose)
);
CREATE INDEX profile_images_media_idx ON profile_images (media_id);
