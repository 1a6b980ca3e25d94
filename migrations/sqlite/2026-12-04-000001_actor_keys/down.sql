DROP TABLE actor_keys;
