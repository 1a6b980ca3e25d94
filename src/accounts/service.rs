//! Account operations that combine database work with password hashing. Hashing runs on the
//! blocking pool without holding a database connection, so a burst of logins cannot starve the pool.

use std::net::IpAddr;

use super::model::{self, Role, Status, User};
use super::rules::{self, AccountInput};
use super::{Error, Result, password};
use crate::config::Registration;
use crate::db::Db;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Hash("the hashing task failed".into()))
}

pub async fn hash_password(password: String) -> Result<String> {
    blocking(move || password::hash(&password)).await?
}

/// Input of a self-service registration.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RegistrationForm {
    pub username: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub display_name: String,
}

/// Registers an account according to the instance's registration mode. With `approval` the
/// account is created as pending and cannot log in until an admin approves it.
pub async fn register(db: &Db, mode: Registration, form: RegistrationForm) -> Result<User> {
    let status = match mode {
        Registration::Closed => return Err(Error::RegistrationClosed),
        Registration::Approval => Status::Pending,
        Registration::Open => Status::Active,
    };
    let username = rules::validate_local_name("username", &form.username)?;
    let email = rules::validate_email(&form.email)?;
    let display_name = rules::validate_display_name(&form.display_name, &username)?;
    rules::validate_password(&form.password, &username)?;
    // Refuse a taken name before spending time on the hash; the insert re-checks atomically.
    let check = username.clone();
    if db
        .run(move |c| User::by_username(c, &check).map_err(Error::from))
        .await?
        .is_some()
    {
        return Err(Error::NameTaken(username));
    }
    let password_hash = hash_password(form.password).await?;
    let input = AccountInput {
        username,
        display_name,
        email,
        password_hash,
        role: Role::Member,
        status,
        must_change_password: false,
    };
    db.run(move |c| rules::create_user(c, &input)).await
}

/// The form of a user name used for lookups and for counting failures: bounded and free of
/// characters no user name can contain, so hostile input cannot reach the database as is.
pub fn login_key(username: &str) -> String {
    username
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect::<String>()
        .to_lowercase()
}

/// Checks a login. The attempt is counted as a failure *before* the password is checked, in the
/// same serialised transaction as the limit check, so parallel guesses cannot overtake the limit;
/// a success then clears it. A locked account answers 429 even for the right password: otherwise
/// the limit would still let an attacker tell right from wrong.
pub async fn login(db: &Db, username: &str, password: String, ip: IpAddr) -> Result<User> {
    let name = login_key(username);
    let ip = ip.to_string();
    let now = crate::db::now();
    let (n, i) = (name.clone(), ip.clone());
    let user = db
        .run(move |c| rules::begin_login_attempt(c, &n, &i, now))
        .await?;
    let too_long = password.chars().count() > rules::MAX_PASSWORD_CHARS;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = blocking(move || match stored {
        Some(hash) if !too_long => password::verify(&password, &hash),
        _ => {
            password::verify_dummy(&password);
            false
        }
    })
    .await?;
    let Some(user) = user.filter(|_| ok) else {
        return Err(Error::WrongCredentials);
    };
    rules::ensure_active(&user)?;
    let id = user.id;
    db.run(move |c| {
        model::clear_failures(c, &name)?;
        User::touch_login(c, id, now).map_err(Error::from)
    })
    .await?;
    Ok(user)
}

/// Changes a user's own password after checking the current one (counted like a login attempt,
/// so it cannot be used to guess passwords). Ends the user's sessions; replacing a one-time
/// password also revokes the API tokens.
pub async fn change_password(db: &Db, user: &User, current: String, new: String, ip: IpAddr) -> Result<()> {
    let (name, ip) = (user.username.clone(), ip.to_string());
    let now = crate::db::now();
    let (n, i) = (name.clone(), ip.clone());
    db.run(move |c| rules::begin_login_attempt(c, &n, &i, now))
        .await?;
    let stored = user.password_hash.clone();
    let current_copy = current.clone();
    if !blocking(move || password::verify(&current_copy, &stored)).await? {
        return Err(Error::invalid("current_password", "invalid-current-password"));
    }
    db.run(move |c| model::clear_failures(c, &name).map_err(Error::from))
        .await?;
    if new == current {
        return Err(Error::invalid("new_password", "invalid-new-password-same"));
    }
    rules::validate_password(&new, &user.username).map_err(|e| match e {
        Error::Invalid { key, args, .. } => Error::invalid_with("new_password", key, args),
        other => other,
    })?;
    let hash = hash_password(new).await?;
    let (id, forced) = (user.id, user.must_change_password);
    db.run(move |c| rules::replace_password(c, id, &hash, false, forced))
        .await
}
