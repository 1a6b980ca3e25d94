DROP INDEX groups_ap_id_idx;
ALTER TABLE groups DROP COLUMN remote_actor_id;
ALTER TABLE groups DROP COLUMN ap_id;
