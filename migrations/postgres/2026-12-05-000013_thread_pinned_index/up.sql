-- The pinned threads of a group (first page of every thread list): without it, the query reads
-- every thread of the group to find the few pinned ones (145 ms for 38 000 threads on SQLite,
-- see docs/performance.md, scenario d). Partial: only pinned threads are in it.
CREATE INDEX threads_pinned_idx ON threads (group_id, pinned_at) WHERE pinned_at IS NOT NULL;
