//! Who is making the request: a bearer API token (`Authorization: Bearer agora_…`) or the session
//! cookie. A request that presents a token is judged by the token alone; a bad token is a 401,
//! never a silent fall-back to the cookie.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::model::{ApiToken, Session, User};
use super::{Error, rules};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::cookies;

/// How the request authenticated.
#[derive(Debug, Clone)]
pub enum Credential {
    Session(Session),
    Token(ApiToken),
}

#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub credential: Credential,
}

impl Authenticated {
    pub fn session_csrf(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session(s) => Some(&s.csrf_token),
            Credential::Token(_) => None,
        }
    }
}

/// The authenticated user, if any. Resolved once per request and cached in the extensions.
#[derive(Debug, Clone)]
pub struct MaybeAuth(pub Option<Authenticated>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(cached) = parts.extensions.get::<MaybeAuth>() {
            return Ok(cached.clone());
        }
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| match v.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim().to_owned(),
                _ => String::new(),
            });
        let now = crate::db::now();
        let resolved = if let Some(token) = bearer {
            let found = if token.starts_with(rules::TOKEN_PREFIX) {
                state
                    .db()
                    .run(move |c| rules::user_by_token(c, &token, now))
                    .await?
            } else {
                None
            };
            match found {
                Some((user, token)) => Some(Authenticated {
                    user,
                    credential: Credential::Token(token),
                }),
                None => {
                    return Err(AppError::new(
                        axum::http::StatusCode::UNAUTHORIZED,
                        "invalid_token",
                        "error-invalid-token",
                    ));
                }
            }
        } else if let Some(cookie) = cookies::get(&parts.headers, cookies::SESSION) {
            state
                .db()
                .run(move |c| rules::session_user(c, &cookie, now))
                .await?
                .map(|(user, session)| Authenticated {
                    user,
                    credential: Credential::Session(session),
                })
        } else {
            None
        };
        let value = MaybeAuth(resolved);
        parts.extensions.insert(value.clone());
        Ok(value)
    }
}

/// A logged-in user who may use the platform (no pending forced password change).
#[derive(Debug, Clone)]
pub struct Auth(pub Authenticated);

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let AuthAllowingPasswordChange(auth) =
            AuthAllowingPasswordChange::from_request_parts(parts, state).await?;
        if auth.user.must_change_password {
            return Err(Error::PasswordChangeRequired.into());
        }
        Ok(Self(auth))
    }
}

/// A logged-in user, even one who still has to replace a one-time password. Only the endpoints
/// that let them do that (and see who they are, and log out) use this.
#[derive(Debug, Clone)]
pub struct AuthAllowingPasswordChange(pub Authenticated);

impl FromRequestParts<AppState> for AuthAllowingPasswordChange {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match MaybeAuth::from_request_parts(parts, state).await? {
            MaybeAuth(Some(a)) => Ok(Self(a)),
            MaybeAuth(None) => Err(Error::Unauthenticated.into()),
        }
    }
}

/// An instance administrator.
#[derive(Debug, Clone)]
pub struct Admin(pub Authenticated);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Auth(auth) = Auth::from_request_parts(parts, state).await?;
        if !auth.user.is_admin() {
            return Err(Error::Forbidden.into());
        }
        Ok(Self(auth))
    }
}
