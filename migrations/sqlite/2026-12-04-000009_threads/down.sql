DROP TABLE moderation_log;
DROP TABLE post_tags;
DROP TABLE likes;
DROP TABLE post_revisions;
DROP TABLE posts;
DROP TABLE threads;
