//! Minimal cookie handling: we set only our own three cookies, so a full cookie jar is not needed.

use axum::http::{HeaderMap, HeaderValue, header};

pub const SESSION: &str = "agora_session";
pub const CSRF: &str = "agora_csrf";
/// The language an anonymous visitor chose (logged-in users have it on their account).
pub const LANG: &str = "agora_lang";

/// The value of cookie `name` from the request, if present and non-empty.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure when served over https.
/// `max_age` of `None` makes a browser-session cookie; `Some(0)` deletes the cookie.
pub fn set(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        s.push_str("; Secure");
    }
    // Our values are base64url, so the header is always valid; fall back to deleting otherwise.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("agora_invalid=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_cookie() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; agora_session=abc; b=2"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("agora_csrf=xyz"));
        assert_eq!(get(&h, SESSION).as_deref(), Some("abc"));
        assert_eq!(get(&h, CSRF).as_deref(), Some("xyz"));
        assert_eq!(get(&h, "missing"), None);
    }

    #[test]
    fn cookie_attributes() {
        let v = set(SESSION, "abc", Some(60), true);
        let s = v.to_str().unwrap();
        assert!(
            s.contains("HttpOnly")
                && s.contains("SameSite=Lax")
                && s.contains("Secure")
                && s.contains("Max-Age=60")
        );
        assert!(
            !set(SESSION, "abc", None, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }
}
