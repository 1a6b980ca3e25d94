//! CSRF protection for every form. A logged-in user's forms carry the session's token; anonymous
//! forms (login, registration) use a random token in the `agora_csrf` cookie (double submit).
//! Additionally a cross-site `Origin` header is refused outright. The session cookie is also
//! SameSite=Lax, so this is defence in depth.

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use super::cookies;
use crate::accounts::auth::MaybeAuth;
use crate::error::AppError;
use crate::state::AppState;

/// The anonymous CSRF token for this request (from the cookie, or freshly made and set).
#[derive(Debug, Clone)]
struct AnonToken(String);

/// Ensures every browser has an anonymous CSRF cookie before it sees a form.
pub async fn ensure_cookie(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let existing = cookies::get(req.headers(), cookies::CSRF).filter(|t| t.len() >= 32 && t.len() <= 64);
    let (token, fresh) = match existing {
        Some(t) => (t, false),
        None => (crate::accounts::rules::new_secret("").0, true),
    };
    req.extensions_mut().insert(AnonToken(token.clone()));
    let mut response = next.run(req).await;
    if fresh {
        response.headers_mut().append(
            header::SET_COOKIE,
            cookies::set(cookies::CSRF, &token, None, state.config().is_https()),
        );
    }
    response
}

/// The token a form on this page must carry, and the one a submitted form is checked against.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

impl FromRequestParts<AppState> for CsrfToken {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let MaybeAuth(auth) = MaybeAuth::from_request_parts(parts, state).await?;
        if let Some(csrf) = auth.and_then(|a| a.session_csrf().map(str::to_owned)) {
            return Ok(Self(csrf));
        }
        parts
            .extensions
            .get::<AnonToken>()
            .map(|t| Self(t.0.clone()))
            .ok_or_else(|| AppError::internal(&"CSRF middleware is not installed"))
    }
}

impl CsrfToken {
    /// Checks a submitted form's token and the request's origin.
    pub fn verify(
        &self,
        submitted: &str,
        headers: &HeaderMap,
        public_url: &url::Url,
    ) -> Result<(), AppError> {
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
            && origin != "null"
            && !same_origin(origin, headers, public_url)
        {
            return Err(forbidden());
        }
        if constant_time_eq(submitted.as_bytes(), self.0.as_bytes()) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }
}

/// A form body whose CSRF token (field `csrf`) and origin have been checked: the one extractor
/// every form handler uses, so no handler can forget the check.
pub struct CsrfForm<T>(pub T);

/// For forms whose only field is the CSRF token (a logout or delete button).
#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}

#[derive(serde::Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    inner: T,
}

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let expected = CsrfToken::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let req = Request::from_parts(parts, body);
        let super::extract::HtmlForm(form) =
            super::extract::HtmlForm::<WithCsrf<T>>::from_request(req, state).await?;
        expected.verify(&form.csrf, &headers, &state.config().public_url)?;
        Ok(Self(form.inner))
    }
}

/// A form is same-origin when its `Origin` is our public URL, or names the host the browser sent
/// the request to (`Host`): the instance may be reached under another name than `public_url`,
/// e.g. 127.0.0.1 instead of localhost, and a cross-site page can set neither header.
fn same_origin(origin: &str, headers: &HeaderMap, public_url: &url::Url) -> bool {
    let Ok(parsed) = url::Url::parse(origin) else {
        return false;
    };
    if parsed.origin() == public_url.origin() {
        return true;
    }
    let authority = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest.trim_end_matches('/'));
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| !host.is_empty() && host.eq_ignore_ascii_case(authority))
}

fn forbidden() -> AppError {
    AppError::new(axum::http::StatusCode::FORBIDDEN, "csrf_failed", "error-csrf")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_checks_token_and_origin() {
        let url = url::Url::parse("https://agora.example").unwrap();
        let t = CsrfToken("a".repeat(43));
        let mut h = HeaderMap::new();
        assert!(t.verify(&"a".repeat(43), &h, &url).is_ok());
        assert!(t.verify(&"b".repeat(43), &h, &url).is_err());
        assert!(t.verify("", &h, &url).is_err());
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(t.verify(&"a".repeat(43), &h, &url).is_err());
        h.insert(header::ORIGIN, "https://agora.example".parse().unwrap());
        assert!(t.verify(&"a".repeat(43), &h, &url).is_ok());
        // Reached under another address than public_url: Origin must match the Host it was sent to.
        h.insert(header::ORIGIN, "http://127.0.0.1:18555".parse().unwrap());
        assert!(t.verify(&"a".repeat(43), &h, &url).is_err());
        h.insert(header::HOST, "127.0.0.1:18555".parse().unwrap());
        assert!(t.verify(&"a".repeat(43), &h, &url).is_ok());
        h.insert(header::HOST, "agora.example".parse().unwrap());
        assert!(t.verify(&"a".repeat(43), &h, &url).is_err());
    }
}
