//! Domain policy: `federation.blocked_domains` from the config plus the domains an admin blocks
//! at run time (`agora federation block`). Nothing is fetched from, accepted from or delivered to
//! a blocked domain or its subdomains.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::domain_blocks;

/// Why a domain cannot be blocked or unblocked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("\"{0}\" is not a domain name such as example.org.")]
    NotADomain(String),
    #[error("{0} is blocked in the configuration (federation.blocked_domains); remove it there.")]
    FromConfig(String),
    #[error("{0} is not blocked.")]
    NotBlocked(String),
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

/// Config and run-time blocks together.
pub fn effective(conn: &mut DbConn, configured: &[String]) -> QueryResult<Vec<String>> {
    let mut all = configured.to_vec();
    all.extend(list(conn)?);
    all.sort();
    all.dedup();
    Ok(all)
}
