-- Domains allowed at run time (`agora federation allow`), for federation.allowlist_only.
CREATE TABLE domain_allows (
    domain TEXT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL
);
