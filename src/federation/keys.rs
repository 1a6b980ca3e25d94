//! RSA-2048 actor keys with aws-lc-rs: generated once, stored as PEM (public: SPKI
//! `BEGIN PUBLIC KEY`, as Mastodon expects; private: PKCS#8), key id `{actor id}#main-key`.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use diesel::prelude::*;

use super::Error;
use crate::db::DbConn;
use crate::db::schema::actor_keys;

/// A key pair as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = actor_keys)]
pub struct ActorKey {
    pub owner: String,
    pub public_key_pem: String,
    pub private_key_pem: String,
    pub created_at: chrono::NaiveDateTime,
}

/// PEM text: base64 in 64-character lines between the labels.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A new RSA-2048 key pair as (public SPKI PEM, private PKCS#8 PEM). Takes about 0.1 s of CPU:
/// call it on a blocking thread.
pub fn generate() -> Result<(String, String), Error> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| Error::Key(e.to_string()))?;
    let private: Pkcs8V1Der<'_> = pair.as_der().map_err(|e| Error::Key(e.to_string()))?;
    let public: PublicKeyX509Der<'_> = pair
        .public_key()
        .as_der()
        .map_err(|e| Error::Key(e.to_string()))?;
    Ok((
        pem("PUBLIC KEY", public.as_ref()),
        pem("PRIVATE KEY", private.as_ref()),
    ))
}

/// Stores a key for `owner` unless one exists (the first one stays: keys never change).
pub fn store(conn: &mut DbConn, owner: &str, public_pem: &str, private_pem: &str) -> QueryResult<()> {
    let row = (
        actor_keys::owner.eq(owner),
        actor_keys::public_key_pem.eq(public_pem),
        actor_keys::private_key_pem.eq(private_pem),
        actor_keys::created_at.eq(crate::db::now()),
    );
    match conn {
        DbConn::Pg(c) => diesel::insert_into(actor_keys::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c),
        DbConn::Sqlite(c) => diesel::insert_into(actor_keys::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c),
    }
    .map(|_| ())
}

pub fn find(conn: &mut DbConn, owner: &str) -> QueryResult<Option<ActorKey>> {
    actor_keys::table
        .find(owner)
        .select(ActorKey::as_select())
        .first(conn)
        .optional()
}

/// The key of `owner`, generating and storing one if it has none yet (actors created before keys
/// existed, and the instance actor on first start). Concurrent callers agree on the stored one.
pub fn ensure(conn: &mut DbConn, owner: &str) -> Result<ActorKey, Error> {
    if let Some(key) = find(conn, owner)? {
        return Ok(key);
    }
    let (public, private) = generate()?;
    store(conn, owner, &public, &private)?;
    find(conn, owner)?.ok_or_else(|| Error::Key(format!("the key of {owner} was not stored")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_spki_and_pkcs8_pem() {
        let (public, private) = generate().unwrap();
        assert!(
            public.starts_with("-----BEGIN PUBLIC KEY-----\n")
                && public.ends_with("-----END PUBLIC KEY-----\n")
        );
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(public.lines().all(|l| l.len() <= 64));
        let der = base64::engine::general_purpose::STANDARD
            .decode(
                public
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        // A 2048-bit RSA SubjectPublicKeyInfo is 294 bytes.
        assert_eq!(der.len(), 294);
        assert_ne!(generate().unwrap().0, public);
    }
}
