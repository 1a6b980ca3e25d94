//! Domain policy: `federation.blocked_domains` from the config plus the domains an admin blocks
//! at run time (`agora federation block`); with `federation.allowlist_only`, additionally only
//! `federation.allowed_domains` plus run-time allows (`agora federation allow`). Nothing is
//! fetched from, accepted from or delivered to a refused domain or its subdomains.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{domain_allows, domain_blocks};

/// Why a domain cannot be blocked or unblocked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("\"{0}\" is not a domain name such as example.org.")]
    NotADomain(String),
    #[error("{0} is blocked in the configuration (federation.blocked_domains); remove it there.")]
    FromConfig(String),
    #[error("{0} is not blocked.")]
    NotBlocked(String),
    #[error("{0} is allowed in the configuration (federation.allowed_domains); remove it there.")]
    AllowedInConfig(String),
    #[error("{0} is not on the allowlist.")]
    NotAllowed(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

pub fn block(conn: &mut DbConn, raw: &str) -> Result<String, Error> {
    let domain =
        crate::config::normalize_domain(raw).ok_or_else(|| Error::NotADomain(raw.trim().to_owned()))?;
    let row = (
        domain_blocks::domain.eq(&domain),
        domain_blocks::created_at.eq(crate::db::now()),
    );
    match conn {
        DbConn::Pg(c) => diesel::insert_into(domain_blocks::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(domain_blocks::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(domain)
}

pub fn unblock(conn: &mut DbConn, raw: &str, configured: &[String]) -> Result<String, Error> {
    let domain =
        crate::config::normalize_domain(raw).ok_or_else(|| Error::NotADomain(raw.trim().to_owned()))?;
    if configured.contains(&domain) {
        return Err(Error::FromConfig(domain));
    }
    let n = diesel::delete(domain_blocks::table.find(&domain)).execute(conn)?;
    if n == 0 {
        Err(Error::NotBlocked(domain))
    } else {
        Ok(domain)
    }
}

/// Domains blocked at run time, sorted.
pub fn list(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    domain_blocks::table
        .select(domain_blocks::domain)
        .order(domain_blocks::domain)
        .load(conn)
}

/// Whether `host` is one of `domains` or below one.
pub fn matches(host: &str, domains: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    domains
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// The effective policy: config and run-time lists together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainPolicy {
    pub blocked: Vec<String>,
    /// `Some` in allowlist mode: only these domains (and their subdomains).
    pub allowed: Option<Vec<String>>,
}

impl DomainPolicy {
    /// Why we do not federate with `host`, or None when we do.
    pub fn refusal(&self, host: &str) -> Option<&'static str> {
        if matches(host, &self.blocked) {
            return Some("the domain is blocked");
        }
        match &self.allowed {
            Some(allowed) if !matches(host, allowed) => Some("the domain is not on the allowlist"),
            _ => None,
        }
    }
}

pub fn effective(conn: &mut DbConn, config: &crate::config::Federation) -> QueryResult<DomainPolicy> {
    let mut blocked = config.blocked_domains.clone();
    blocked.extend(list(conn)?);
    blocked.sort();
    blocked.dedup();
    let allowed = if config.allowlist_only {
        let mut allowed = config.allowed_domains.clone();
        allowed.extend(list_allowed(conn)?);
        allowed.sort();
        allowed.dedup();
        Some(allowed)
    } else {
        None
    };
    Ok(DomainPolicy { blocked, allowed })
}

pub fn allow(conn: &mut DbConn, raw: &str) -> Result<String, Error> {
    let domain =
        crate::config::normalize_domain(raw).ok_or_else(|| Error::NotADomain(raw.trim().to_owned()))?;
    let row = (
        domain_allows::domain.eq(&domain),
        domain_allows::created_at.eq(crate::db::now()),
    );
    match conn {
        DbConn::Pg(c) => diesel::insert_into(domain_allows::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(domain_allows::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(domain)
}

pub fn disallow(conn: &mut DbConn, raw: &str, configured: &[String]) -> Result<String, Error> {
    let domain =
        crate::config::normalize_domain(raw).ok_or_else(|| Error::NotADomain(raw.trim().to_owned()))?;
    if configured.contains(&domain) {
        return Err(Error::AllowedInConfig(domain));
    }
    if diesel::delete(domain_allows::table.find(&domain)).execute(conn)? == 0 {
        Err(Error::NotAllowed(domain))
    } else {
        Ok(domain)
    }
}

/// Domains allowed at run time, sorted.
pub fn list_allowed(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    domain_allows::table
        .select(domain_allows::domain)
        .order(domain_allows::domain)
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_allowlists_cover_subdomains() {
        let open = DomainPolicy {
            blocked: vec!["spam.example".into()],
            allowed: None,
        };
        assert_eq!(open.refusal("spam.example"), Some("the domain is blocked"));
        assert_eq!(open.refusal("Eu.Spam.Example."), Some("the domain is blocked"));
        assert_eq!(open.refusal("notspam.example"), None);
        assert_eq!(open.refusal("social.example"), None);
        let closed = DomainPolicy {
            blocked: vec!["bad.partner.example".into()],
            allowed: Some(vec!["partner.example".into()]),
        };
        assert_eq!(closed.refusal("partner.example"), None);
        assert_eq!(closed.refusal("stadtwerke.partner.example"), None);
        assert_eq!(
            closed.refusal("bad.partner.example"),
            Some("the domain is blocked")
        );
        assert_eq!(
            closed.refusal("mastodon.social"),
            Some("the domain is not on the allowlist")
        );
    }
}
