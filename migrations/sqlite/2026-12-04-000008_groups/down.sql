DROP TABLE notifications;
DROP TABLE join_requests;
DROP TABLE memberships;
DROP TABLE role_permissions;
DROP TABLE roles;
DROP TABLE groups;
