DROP TABLE following;
