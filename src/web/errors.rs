//! Turns every error response into the client's format: an HTML page in the site's design for
//! browsers, `{"error", "message"}` JSON for everyone else. This also covers responses made
//! outside our handlers: 404 and 405 from routing, 413 from the body limit, 408 from the timeout.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Page, i18n};
use crate::error::AppError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "web/templates/error.html")]
struct ErrorTemplate {
    page: Page,
    status: u16,
    heading: String,
    message: String,
}

/// The page heading for an error status, in the page's language.
fn heading_key(status: u16) -> &'static str {
    match status {
        400 | 413 | 415 | 422 => "error-heading-bad-request",
        401 => "error-heading-401",
        403 => "error-heading-403",
        404 => "error-heading-404",
        405 => "error-heading-bad-request",
        410 => "error-heading-410",
        429 => "error-heading-429",
        s if s >= 500 => "error-heading-500",
        _ => "error-heading-other",
    }
}

/// Whether the client is a browser expecting a page rather than an API client.
pub fn wants_html(path: &str, headers: &HeaderMap) -> bool {
    if path.starts_with("/api/") {
        return false;
    }
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn content_type_is(response: &Response, prefix: &str) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(prefix))
}

pub async fn render_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let html = wants_html(req.uri().path(), req.headers());
    // Decided before the handler runs and without the database: an error page must render even
    // when the database is what failed.
    let lang = super::request_lang(req.headers(), None);
    let path = req.uri().path().to_owned();
    let is_get = req.method() == axum::http::Method::GET;
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = response.extensions().get::<AppError>().cloned();
    if html {
        if content_type_is(&response, "text/html") {
            return response;
        }
        // A browser that is not logged in is sent to the login page and brought back afterwards.
        if status == axum::http::StatusCode::UNAUTHORIZED && is_get {
            let next: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
            return axum::response::Redirect::to(&format!("/login?next={next}")).into_response();
        }
        let error = error.unwrap_or_else(|| AppError::from_status(status));
        // The user menu is left out: resolving the session again would repeat the request's
        // database work, possibly the very thing that failed.
        let page = Page {
            lang,
            instance: state.instance_cached(),
            user: None,
            csrf: String::new(),
            path,
        };
        let template = ErrorTemplate {
            heading: i18n::translate(lang, heading_key(status.as_u16()), &[]),
            message: error.localized(lang),
            status: status.as_u16(),
            page,
        };
        let mut page_response = super::render(&template);
        *page_response.status_mut() = status;
        copy_header(&response, &mut page_response, header::RETRY_AFTER);
        copy_header(&response, &mut page_response, header::SET_COOKIE);
        return page_response;
    }
    // ActivityPub answers carry their own body (a 410 Tombstone, say).
    if error.is_some()
        || content_type_is(&response, "application/json")
        || content_type_is(&response, "application/activity+json")
    {
        return response;
    }
    let mut json = AppError::from_status(status).into_response();
    copy_header(&response, &mut json, header::RETRY_AFTER);
    copy_header(&response, &mut json, header::ALLOW);
    json
}

fn copy_header(from: &Response, to: &mut Response, name: header::HeaderName) {
    for v in from.headers().get_all(&name) {
        to.headers_mut().append(name.clone(), v.clone());
    }
}
