//! Turns every error response into the client's format: an HTML page in the site's design for
//! browsers, `{"error", "message"}` JSON for everyone else. This also covers responses made
//! outside our handlers: 404 and 405 from routing, 413 from the body limit, 408 from the timeout.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Page;
use crate::error::AppError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "web/templates/error.html")]
struct ErrorTemplate {
    page: Page,
    status: u16,
    message: String,
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
    let instance_name = state.config().instance.name.clone();
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
        let error = error.unwrap_or_else(|| AppError::from_status(status));
        // The page's user menu is left out here: resolving the session again for an error page
        // would repeat the request's database work, possibly the very thing that failed.
        let page = Page {
            instance_name,
            user: None,
            csrf: String::new(),
        };
        let template = ErrorTemplate {
            page,
            status: status.as_u16(),
            message: error.message.clone(),
        };
        let mut page_response = super::render(&template);
        *page_response.status_mut() = status;
        copy_header(&response, &mut page_response, header::RETRY_AFTER);
        copy_header(&response, &mut page_response, header::SET_COOKIE);
        return page_response;
    }
    if error.is_some() || content_type_is(&response, "application/json") {
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
