DROP INDEX threads_live_group_idx;
