DROP TABLE jobs;
DROP TABLE instance_settings;
DROP TABLE login_failures;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE local_names;
