-- Domains blocked at run time (agora federation block), in addition to federation.blocked_domains.
CREATE TABLE domain_blocks (
    domain TEXT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL
);
