//! Content negotiation for "one URL, two faces": ActivityPub clients get JSON, browsers the page.

use axum::http::{HeaderMap, HeaderValue, header};

/// The media type we serve ActivityPub documents as.
pub const ACTIVITY_JSON: &str = "application/activity+json";

/// Whether the request asks for an ActivityPub document: `application/activity+json`, or
/// `application/ld+json` with the ActivityStreams profile (parameters and case tolerated).
pub fn wants_activity_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    accept.split(',').any(|item| {
        let item = item.trim().to_ascii_lowercase();
        let mut parts = item.split(';').map(str::trim);
        match parts.next() {
            Some("application/activity+json") => true,
            Some("application/ld+json") => parts.any(|p| {
                p.replace(' ', "")
                    .trim_start_matches("profile=")
                    .trim_matches('"')
                    == "https://www.w3.org/ns/activitystreams"
            }),
            _ => false,
        }
    })
}

pub fn activity_json_headers() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(ACTIVITY_JSON)),
        (header::VARY, HeaderValue::from_static("Accept")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(accept: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::ACCEPT, accept.parse().unwrap());
        m
    }

    #[test]
    fn accept_variants() {
        assert!(wants_activity_json(&h("application/activity+json")));
        assert!(wants_activity_json(&h(
            "Application/Activity+JSON; charset=utf-8"
        )));
        assert!(wants_activity_json(&h(
            "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""
        )));
        assert!(wants_activity_json(&h(
            "text/html, application/ld+json;profile=\"https://www.w3.org/ns/activitystreams\""
        )));
        assert!(!wants_activity_json(&h("application/ld+json")));
        assert!(!wants_activity_json(&h(
            "text/html,application/xhtml+xml,*/*;q=0.8"
        )));
        assert!(!wants_activity_json(&HeaderMap::new()));
    }
}
