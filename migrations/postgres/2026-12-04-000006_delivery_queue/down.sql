ALTER TABLE users DROP COLUMN manually_approves_followers;
ALTER TABLE followers DROP COLUMN state;
ALTER TABLE followers DROP COLUMN shared_inbox;
DROP TABLE instances;
DROP TABLE deliveries;
DROP TABLE outgoing_activities;
