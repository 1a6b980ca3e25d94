//! Account rules as plain functions: validation of names, passwords and e-mail addresses, and the
//! database operations that must stay consistent (claiming a name, issuing and checking secrets).
//! Everything here is synchronous and takes a connection, so it runs on the blocking pool and in
//! unit tests alike. Password hashing is not done here: callers hash before, off the connection.

use base64::Engine;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::model::{self, ApiToken, NewApiToken, NewSession, NewUser, Role, Session, Status, User};
use super::{Error, Result};
use crate::db::schema::{api_tokens, sessions, users};
use crate::db::{DbConn, write_tx};

/// Names that would collide with our own paths or mislead people; refused for users and groups.
pub const RESERVED_NAMES: &[&str] = &[
    "about",
    "abuse",
    "account",
    "accounts",
    "activity",
    "actor",
    "admin",
    "administrator",
    "agora",
    "all",
    "anonymous",
    "api",
    "assets",
    "auth",
    "blog",
    "contact",
    "contracts",
    "dashboard",
    "everyone",
    "favicon",
    "feed",
    "followers",
    "following",
    "group",
    "groups",
    "healthz",
    "help",
    "home",
    "imprint",
    "inbox",
    "info",
    "instance",
    "login",
    "logout",
    "mail",
    "media",
    "moderator",
    "moderators",
    "new",
    "nodeinfo",
    "noreply",
    "null",
    "outbox",
    "postmaster",
    "privacy",
    "public",
    "readyz",
    "register",
    "root",
    "rss",
    "search",
    "security",
    "settings",
    "shared",
    "static",
    "staff",
    "support",
    "system",
    "tag",
    "tags",
    "tickets",
    "undefined",
    "uploads",
    "user",
    "users",
    "webfinger",
    "webmaster",
    "www",
];

/// How long a failed login counts against its account and address.
pub const FAILURE_WINDOW: TimeDelta = TimeDelta::minutes(15);
/// Failures per account within the window before that account answers 429.
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// Failures per client address within the window before that address answers 429.
pub const MAX_FAILURES_PER_IP: i64 = 30;
/// Session lifetime; refreshed while the session is in use.
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::days(30);

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Bounds the hashing work an attacker can ask for.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Normalises and checks a local name (user or group): 3–30 characters of `a-z`, `0-9`, `_`,
/// stored lower-case, not reserved.
pub fn validate_local_name(field: &'static str, raw: &str) -> Result<String> {
    // Checked before lowercasing: some non-ASCII letters (the Kelvin sign) lowercase to ASCII.
    if !raw.trim().is_ascii() {
        return Err(Error::invalid(field, "invalid-name-chars"));
    }
    let name = raw.trim().to_lowercase();
    let len = name.chars().count();
    if !(3..=30).contains(&len) {
        return Err(Error::invalid(field, "invalid-name-length"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::invalid(field, "invalid-name-chars"));
    }
    if RESERVED_NAMES.contains(&name.as_str()) {
        return Err(Error::invalid_with(
            field,
            "invalid-name-reserved",
            vec![("name", name)],
        ));
    }
    Ok(name)
}

pub fn validate_password(password: &str, username: &str) -> Result<()> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_CHARS {
        return Err(Error::invalid_with(
            "password",
            "invalid-password-short",
            vec![("min", MIN_PASSWORD_CHARS.to_string())],
        ));
    }
    if len > MAX_PASSWORD_CHARS {
        return Err(Error::invalid_with(
            "password",
            "invalid-password-long",
            vec![("max", MAX_PASSWORD_CHARS.to_string())],
        ));
    }
    if password.trim().is_empty() {
        return Err(Error::invalid("password", "invalid-password-blank"));
    }
    if password.trim().to_lowercase() == username.trim().to_lowercase() {
        return Err(Error::invalid("password", "invalid-password-username"));
    }
    Ok(())
}

pub fn validate_email(raw: &str) -> Result<String> {
    let email = raw.trim();
    let valid = email.len() <= 254
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c) || "<>,;\"".contains(c))
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email.to_owned())
    } else {
        Err(Error::invalid("email", "invalid-email"))
    }
}

/// Invisible formatting characters (zero-width spaces and joiners, bidirectional overrides, BOM,
/// soft hyphen): they let one name look like another, so names and addresses refuse them.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

pub fn validate_display_name(raw: &str, fallback: &str) -> Result<String> {
    let name = raw.trim();
    if name.chars().any(is_invisible) {
        return Err(Error::invalid("display_name", "invalid-display-name-invisible"));
    }
    if name.is_empty() {
        return Ok(fallback.to_owned());
    }
    if name.chars().count() > 100 {
        return Err(Error::invalid("display_name", "invalid-display-name-long"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid("display_name", "invalid-display-name-control"));
    }
    Ok(name.to_owned())
}

/// Checked input for creating an account. The password is already hashed.
#[derive(Debug)]
pub struct AccountInput {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub status: Status,
    pub must_change_password: bool,
}

/// Creates a user, claiming the name in the shared namespace and storing the actor's RSA key in
/// the same transaction. The key is generated first, outside the transaction, so the SQLite
/// writer lock is not held during the ~0.1 s of key generation.
pub fn create_user(conn: &mut DbConn, input: &AccountInput) -> Result<User> {
    let now = crate::db::now();
    let (public_key, private_key) =
        crate::federation::keys::generate().map_err(|e| Error::Key(e.to_string()))?;
    write_tx(conn, |conn| {
        if !model::claim_name(conn, &input.username, "user", now)? {
            return Err(Error::NameTaken(input.username.clone()));
        }
        let row = NewUser {
            username: &input.username,
            display_name: &input.display_name,
            email: &input.email,
            password_hash: &input.password_hash,
            role: input.role.as_str(),
            status: input.status.as_str(),
            must_change_password: input.must_change_password,
            language: None,
            created_at: now,
            updated_at: now,
        };
        let user = diesel::insert_into(users::table)
            .values(&row)
            .returning(users::all_columns)
            .get_result::<User>(conn)
            .map_err(|e| {
                if crate::db::is_unique_violation(&e) {
                    Error::NameTaken(input.username.clone())
                } else {
                    Error::from(e)
                }
            })?;
        crate::federation::keys::store(conn, &user.username, &public_key, &private_key)?;
        Ok(user)
    })
}

pub fn find_user(conn: &mut DbConn, name: &str) -> Result<User> {
    User::by_username(conn, name)?.ok_or_else(|| Error::UserNotFound(name.trim().to_lowercase()))
}

/// Whether the account may log in at all (checked after the password, so a wrong password on a
/// disabled account still looks like any wrong password).
pub fn ensure_active(user: &User) -> Result<()> {
    match user.status() {
        Status::Active => Ok(()),
        Status::Pending => Err(Error::Pending),
        Status::Disabled => Err(Error::Disabled),
    }
}

/// Refuses a login attempt when the account or the address has failed too often recently;
/// otherwise records the attempt as a failure (cleared again on success) and returns the user.
/// On PostgreSQL advisory locks on the name and the address serialise concurrent attempts; on
/// SQLite the `BEGIN IMMEDIATE` of [`write_tx`] does.
pub fn begin_login_attempt(
    conn: &mut DbConn,
    username: &str,
    ip: &str,
    now: NaiveDateTime,
) -> Result<Option<User>> {
    write_tx(conn, |conn| {
        if let DbConn::Pg(c) = conn {
            diesel::sql_query(
                "SELECT pg_advisory_xact_lock(hashtext($1)), pg_advisory_xact_lock(hashtext($2))",
            )
            .bind::<diesel::sql_types::Text, _>(format!("login-user:{username}"))
            .bind::<diesel::sql_types::Text, _>(format!("login-ip:{ip}"))
            .execute(c)?;
        }
        let (by_user, by_ip) = model::failures_since(conn, username, ip, now - FAILURE_WINDOW)?;
        if by_user >= MAX_FAILURES_PER_ACCOUNT || by_ip >= MAX_FAILURES_PER_IP {
            return Err(Error::TooManyAttempts);
        }
        model::record_failure(conn, username, ip, now)?;
        Ok(User::by_username(conn, username)?)
    })
}

/// Changes the role, refusing to demote the last active admin (nobody could administer the
/// instance any more).
pub fn set_role(conn: &mut DbConn, name: &str, role: Role) -> Result<User> {
    write_tx(conn, |conn| {
        let user = find_user(conn, name)?;
        if user.is_admin() && role != Role::Admin && User::count_admins(conn)? <= 1 {
            return Err(Error::invalid("role", "invalid-last-admin-role"));
        }
        User::set_role(conn, user.id, role)?;
        find_user(conn, name)
    })
}

/// Disables an account and ends its sessions. Tokens stay stored but stop working while disabled.
pub fn disable(conn: &mut DbConn, name: &str) -> Result<User> {
    write_tx(conn, |conn| {
        let user = find_user(conn, name)?;
        if user.is_admin() && user.status() == Status::Active && User::count_admins(conn)? <= 1 {
            return Err(Error::invalid("user", "invalid-last-admin-disable"));
        }
        User::set_status(conn, user.id, Status::Disabled)?;
        delete_user_sessions(conn, user.id)?;
        find_user(conn, name)
    })
}

/// Activates a pending or disabled account.
pub fn activate(conn: &mut DbConn, name: &str) -> Result<User> {
    let user = find_user(conn, name)?;
    User::set_status(conn, user.id, Status::Active)?;
    find_user(conn, name)
}

/// Stores the user's language (`None`: follow the browser).
pub fn set_language(conn: &mut DbConn, user_id: i64, lang: Option<&str>) -> Result<()> {
    diesel::update(users::table.find(user_id))
        .set((users::language.eq(lang), users::updated_at.eq(crate::db::now())))
        .execute(conn)?;
    Ok(())
}

/// Updates display name and language from the settings form.
pub fn update_profile(conn: &mut DbConn, user: &User, display_name: &str, language: &str) -> Result<User> {
    let display_name = validate_display_name(display_name, &user.username)?;
    let language = match language.trim() {
        "" => None,
        code => Some(
            crate::web::i18n::Lang::parse(code)
                .filter(|l| l.code() == code)
                .ok_or_else(|| Error::invalid("language", "invalid-language"))?
                .code(),
        ),
    };
    diesel::update(users::table.find(user.id))
        .set((
            users::display_name.eq(&display_name),
            users::language.eq(language),
            users::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    User::find(conn, user.id)?.ok_or_else(|| Error::UserNotFound(user.username.clone()))
}

/// Replaces the password (already hashed) and ends every session of the user. `revoke_tokens`
/// also deletes the API tokens: after an admin's reset, and when a one-time password is replaced
/// (tokens made with it were made by whoever knew it).
pub fn replace_password(
    conn: &mut DbConn,
    user_id: i64,
    hash: &str,
    must_change: bool,
    revoke_tokens: bool,
) -> Result<()> {
    write_tx(conn, |conn| {
        User::set_password(conn, user_id, hash, must_change)?;
        delete_user_sessions(conn, user_id)?;
        if revoke_tokens {
            diesel::delete(api_tokens::table.filter(api_tokens::user_id.eq(user_id))).execute(conn)?;
        }
        Ok(())
    })
}

/// A new random secret with a recognisable prefix (so leaked tokens can be found by scanners), and
/// the hash we store.
pub fn new_secret(prefix: &str) -> (String, String) {
    let bytes: [u8; 32] = rand::rng().random();
    let plain = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash_secret(&plain);
    (plain, hash)
}

pub fn hash_secret(plain: &str) -> String {
    let digest = Sha256::digest(plain.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub const TOKEN_PREFIX: &str = "agora_";

pub fn validate_token_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(Error::invalid("name", "invalid-token-name"));
    }
    Ok(name.to_owned())
}

/// Issues an API token; the plain value is returned once and never stored.
pub fn create_token(conn: &mut DbConn, user_id: i64, name: &str) -> Result<(ApiToken, String)> {
    let name = validate_token_name(name)?;
    let (plain, hash) = new_secret(TOKEN_PREFIX);
    let token = diesel::insert_into(api_tokens::table)
        .values(&NewApiToken {
            user_id,
            name: &name,
            token_hash: &hash,
            created_at: crate::db::now(),
        })
        .returning(api_tokens::all_columns)
        .get_result::<ApiToken>(conn)?;
    Ok((token, plain))
}

/// The active user a token belongs to. Updates `last_used_at` at most every five minutes, so a
/// busy API client does not turn every read into a write.
pub fn user_by_token(conn: &mut DbConn, plain: &str, now: NaiveDateTime) -> Result<Option<(User, ApiToken)>> {
    let found: Option<(ApiToken, User)> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(hash_secret(plain)))
        .select((ApiToken::as_select(), User::as_select()))
        .first(conn)
        .optional()?;
    let Some((token, user)) = found else {
        return Ok(None);
    };
    if user.status() != Status::Active {
        return Ok(None);
    }
    if token.last_used_at.is_none_or(|t| now - t > TimeDelta::minutes(5)) {
        diesel::update(api_tokens::table.find(token.id))
            .set(api_tokens::last_used_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some((user, token)))
}

/// Revokes one of the user's tokens.
pub fn revoke_token(conn: &mut DbConn, user_id: i64, token_id: i64) -> Result<()> {
    let n = diesel::delete(
        api_tokens::table
            .filter(api_tokens::id.eq(token_id))
            .filter(api_tokens::user_id.eq(user_id)),
    )
    .execute(conn)?;
    if n == 0 { Err(Error::TokenNotFound) } else { Ok(()) }
}

/// Starts a session; returns it with the cookie value.
pub fn create_session(conn: &mut DbConn, user_id: i64, now: NaiveDateTime) -> Result<(Session, String)> {
    let (plain, hash) = new_secret("");
    let (csrf, _) = new_secret("");
    let session = diesel::insert_into(sessions::table)
        .values(&NewSession {
            token_hash: &hash,
            user_id,
            csrf_token: &csrf,
            created_at: now,
            last_seen_at: now,
            expires_at: now + SESSION_LIFETIME,
        })
        .returning(sessions::all_columns)
        .get_result::<Session>(conn)?;
    Ok((session, plain))
}

/// The active user of a session cookie, extending the session when it was last seen over an hour
/// ago (sliding expiry without a write per request).
pub fn session_user(conn: &mut DbConn, plain: &str, now: NaiveDateTime) -> Result<Option<(User, Session)>> {
    let found: Option<(Session, User)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(hash_secret(plain)))
        .filter(sessions::expires_at.gt(now))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()?;
    let Some((session, user)) = found else {
        return Ok(None);
    };
    if user.status() != Status::Active {
        return Ok(None);
    }
    if now - session.last_seen_at > TimeDelta::hours(1) {
        diesel::update(sessions::table.find(session.id))
            .set((
                sessions::last_seen_at.eq(now),
                sessions::expires_at.eq(now + SESSION_LIFETIME),
            ))
            .execute(conn)?;
    }
    Ok(Some((user, session)))
}

pub fn delete_session(conn: &mut DbConn, session_id: i64) -> Result<()> {
    diesel::delete(sessions::table.find(session_id)).execute(conn)?;
    Ok(())
}

pub fn delete_user_sessions(conn: &mut DbConn, user_id: i64) -> Result<()> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_are_normalised_and_checked() {
        assert_eq!(
            validate_local_name("username", "  Alice_01 ").unwrap(),
            "alice_01"
        );
        for bad in [
            "ab",
            "a-b-c",
            "émile",
            "white space",
            &"x".repeat(31),
            "Admin",
            "INBOX",
            "blog",
            "system",
        ] {
            let e = validate_local_name("username", bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Invalid {
                        field: "username",
                        ..
                    }
                ),
                "{bad}: {e}"
            );
        }
        assert!(validate_local_name("username", &"x".repeat(30)).is_ok());
        assert!(
            validate_local_name("username", "K\u{212A}elvin").is_err(),
            "Kelvin sign is not a k"
        );
    }

    #[test]
    fn password_policy() {
        assert!(validate_password("long enough pw", "alice").is_ok());
        assert!(validate_password("short", "alice").is_err());
        assert!(
            validate_password("alicealice", "AliceAlice").is_err(),
            "same as the user name"
        );
        assert!(validate_password(&"p".repeat(300), "alice").is_err());
        // Counted in characters, not bytes: ten umlauts are ten characters.
        assert!(validate_password("ääääääääää", "alice").is_ok());
        assert!(validate_password("äääää", "alice").is_err());
    }

    #[test]
    fn email_checks() {
        assert_eq!(validate_email(" a@b.example ").unwrap(), "a@b.example");
        for bad in [
            "",
            "a",
            "a@b",
            "@b.example",
            "a b@c.example",
            "a@b@c.example",
            "a@.example",
            "<a@b.example>",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_prefixed_and_hashed() {
        let (plain, hash) = new_secret(TOKEN_PREFIX);
        assert!(plain.starts_with("agora_") && plain.len() > 40);
        assert_eq!(hash, hash_secret(&plain));
        assert_eq!(hash.len(), 64);
        assert_ne!(new_secret("").0, new_secret("").0);
    }

    #[test]
    fn display_name_falls_back_to_username() {
        assert_eq!(validate_display_name("  ", "alice").unwrap(), "alice");
        assert_eq!(validate_display_name(" Alice A. ", "alice").unwrap(), "Alice A.");
        assert!(validate_display_name(&"x".repeat(101), "a").is_err());
        assert!(validate_display_name("\u{200B}\u{200B}", "a").is_err());
        assert!(validate_display_name("Ann\u{202E}nimda", "a").is_err());
        assert!(validate_email("a@b.example\u{200B}").is_err());
        assert!(validate_password("          ", "alice").is_err());
    }
}
