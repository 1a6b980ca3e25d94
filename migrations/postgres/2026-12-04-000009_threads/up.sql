-- Discussion threads and their posts (the opening post and nested replies), local and remote.
-- Local objects have no stored ap_id: it is derived from the group's slug and the row ids
-- ({public_url}/g/{slug}/t/{thread}, …/p/{post}), which never change. Remote objects keep theirs.
CREATE TABLE threads (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    -- The remote context collection of a thread that started elsewhere.
    remote_context TEXT,
    pinned_at TIMESTAMP,
    locked_at TIMESTAMP,
    reply_count INTEGER NOT NULL DEFAULT 0,
    last_activity_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    removed_at TIMESTAMP,
    removed_reason TEXT
);
-- Keyset pagination of a group's thread list (pinned first is done by a second, tiny query).
CREATE INDEX threads_group_activity_idx ON threads (group_id, last_activity_at, id);
CREATE INDEX threads_activity_idx ON threads (last_activity_at, id);

CREATE TABLE posts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    thread_id BIGINT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    -- NULL for the opening post.
    parent_id BIGINT REFERENCES posts (id) ON DELETE CASCADE,
    ap_id TEXT UNIQUE,
    url TEXT,
    author_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    author_remote_id BIGINT REFERENCES remote_actors (id) ON DELETE SET NULL,
    -- Markdown as written (local posts; remote ones when they federate `source`).
    source TEXT,
    content_html TEXT NOT NULL,
    depth INTEGER NOT NULL,
    like_count INTEGER NOT NULL DEFAULT 0,
    published_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP,
    deleted_at TIMESTAMP,
    removed_at TIMESTAMP,
    removed_reason TEXT
);
CREATE INDEX posts_thread_idx ON posts (thread_id, id);
CREATE INDEX posts_parent_idx ON posts (parent_id);
CREATE INDEX posts_author_user_idx ON posts (author_user_id);

-- Earlier versions of edited posts.
CREATE TABLE post_revisions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    title TEXT,
    source TEXT,
    content_html TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX post_revisions_post_idx ON post_revisions (post_id);

-- A like by a local user or a remote actor (by actor id); the Like's id for Undo.
CREATE TABLE likes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    actor TEXT NOT NULL,
    ap_id TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (post_id, actor)
);

-- Hashtags (lower-case, without '#') and mentions (actor ids) of a post.
CREATE TABLE post_tags (
    post_id BIGINT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (post_id, kind, value)
);
CREATE INDEX post_tags_value_idx ON post_tags (kind, value);

-- What moderators did, with their reason; shown to the group's moderators.
CREATE TABLE moderation_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    moderator_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    action TEXT NOT NULL,
    thread_id BIGINT REFERENCES threads (id) ON DELETE SET NULL,
    post_id BIGINT REFERENCES posts (id) ON DELETE SET NULL,
    reason TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX moderation_log_group_idx ON moderation_log (group_id, created_at);
