-- The group directory counts each group's live threads on every request: with this partial
-- index that is an index-only scan instead of reading every thread row (docs/performance.md,
-- scenario d, /groups).
CREATE INDEX threads_live_group_idx ON threads (group_id) WHERE deleted_at IS NULL AND removed_at IS NULL;
