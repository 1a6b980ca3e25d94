-- Groups on other servers that local users follow are mirrored read-only (their threads arrive
-- as Announces). Such a group is a groups row with its actor's id; its slug is "name@host",
-- claimed in local_names as kind 'remote_group' (local names cannot contain '@').
ALTER TABLE groups ADD COLUMN ap_id TEXT;
ALTER TABLE groups ADD COLUMN remote_actor_id BIGINT REFERENCES remote_actors (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX groups_ap_id_idx ON groups (ap_id);
