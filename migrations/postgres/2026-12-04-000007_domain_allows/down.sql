DROP TABLE domain_allows;
