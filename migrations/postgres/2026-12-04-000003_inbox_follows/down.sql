DROP TABLE followers;
DROP TABLE received_activities;
