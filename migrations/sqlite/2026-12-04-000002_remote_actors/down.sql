DROP TABLE remote_actors;
