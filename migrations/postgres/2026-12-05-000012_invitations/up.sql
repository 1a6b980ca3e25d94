-- Invitations into a group: a member who may manage members invites a user with a role; the
-- user accepts (becomes a member with that role) or declines. Joining an 'invite' group needs one.
CREATE TABLE invitations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL REFERENCES roles (token) ON DELETE CASCADE,
    invited_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (group_id, user_id)
);
CREATE INDEX invitations_user_idx ON invitations (user_id);
