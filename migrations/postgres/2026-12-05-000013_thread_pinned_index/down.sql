DROP INDEX threads_pinned_idx;
