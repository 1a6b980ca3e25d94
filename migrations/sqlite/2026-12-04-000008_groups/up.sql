-- Project groups (one ActivityPub Group each), roles as data, memberships, join requests and
-- notifications. A group's slug is claimed in local_names (shared with users) and never changes:
-- the actor id {public_url}/g/{slug} and every object id below it are stable forever.
CREATE TABLE groups (
    id INTEGER PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE REFERENCES local_names (name),
    -- 'project' for sub-projects and the programme; 'blog' for the blog (its own feature).
    kind TEXT NOT NULL DEFAULT 'project',
    title TEXT NOT NULL,
    summary_source TEXT NOT NULL DEFAULT '',
    summary_html TEXT NOT NULL DEFAULT '',
    parent_id BIGINT REFERENCES groups (id) ON DELETE RESTRICT,
    -- 'public' (readable by anyone, federated) or 'internal' (members only, never federated).
    visibility TEXT NOT NULL,
    -- 'open', 'request' or 'invite'.
    join_mode TEXT NOT NULL,
    manually_approves_followers BOOLEAN NOT NULL DEFAULT 0,
    -- Whether non-members (remote fediverse users too) may start threads.
    allow_remote_threads BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX groups_parent_idx ON groups (parent_id);

-- Role tokens (the same in CLI, API and CSV) and what each may do. The rows below are the
-- default template; an instance may change them.
CREATE TABLE roles (
    token TEXT PRIMARY KEY NOT NULL,
    position INTEGER NOT NULL
);
CREATE TABLE role_permissions (
    role TEXT NOT NULL REFERENCES roles (token) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role, permission)
);
INSERT INTO roles (token, position) VALUES
    ('lead', 1), ('assistant', 2), ('core_team', 3), ('extended_team', 4),
    ('steering_committee', 5), ('contract_management', 6), ('partner', 7), ('member', 8),
    ('moderator', 9);
INSERT INTO role_permissions (role, permission) VALUES
    ('lead', 'post'), ('lead', 'moderate'), ('lead', 'manage_members'), ('lead', 'edit_group'),
    ('lead', 'see_internal_tickets'), ('lead', 'view_contracts'), ('lead', 'manage_contracts'),
    ('assistant', 'post'), ('assistant', 'moderate'), ('assistant', 'manage_members'),
    ('assistant', 'edit_group'), ('assistant', 'see_internal_tickets'), ('assistant', 'view_contracts'),
    ('core_team', 'post'), ('core_team', 'see_internal_tickets'), ('core_team', 'view_contracts'),
    ('extended_team', 'post'), ('extended_team', 'see_internal_tickets'),
    ('steering_committee', 'post'), ('steering_committee', 'see_internal_tickets'),
    ('steering_committee', 'view_contracts'),
    ('contract_management', 'post'), ('contract_management', 'see_internal_tickets'),
    ('contract_management', 'view_contracts'), ('contract_management', 'manage_contracts'),
    ('partner', 'post'),
    ('member', 'post'),
    ('moderator', 'post'), ('moderator', 'moderate');

-- A user may hold several roles in one group (core team and moderator, say).
CREATE TABLE memberships (
    id INTEGER PRIMARY KEY NOT NULL,
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL REFERENCES roles (token),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (group_id, user_id, role)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE join_requests (
    id INTEGER PRIMARY KEY NOT NULL,
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message TEXT NOT NULL,
    -- 'pending', 'approved' or 'refused'.
    state TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP,
    decided_by BIGINT REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX join_requests_pending_idx ON join_requests (group_id, user_id) WHERE state = 'pending';

-- Notifications for local users: a translation key with its arguments and a link.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    args_json TEXT NOT NULL,
    link TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    read_at TIMESTAMP
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at);
