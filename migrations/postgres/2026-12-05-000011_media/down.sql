DROP TABLE profile_images;
DROP TABLE media;
