//! `/about`, `/imprint`, `/privacy` and the theme stylesheet `/theme.css`.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{InstanceSettings, rules};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::{Page, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/about", get(about))
        .route("/imprint", get(imprint))
        .route("/privacy", get(privacy))
        .route("/theme.css", get(theme_css))
}

#[derive(Template)]
#[template(path = "instance/templates/about.html")]
struct AboutTemplate {
    page: Page,
    users: i64,
    registration_key: String,
    version: &'static str,
}

async fn about(State(state): State<AppState>, page: Page) -> AppResult<Response> {
    let users = state
        .db()
        .run(|c| crate::accounts::model::User::count_active(c).map_err(crate::db::Error::from))
        .await?;
    let registration_key = format!("registration-{}", page.instance.registration.as_str());
    Ok(render(&AboutTemplate {
        page,
        users,
        registration_key,
        version: env!("CARGO_PKG_VERSION"),
    }))
}

#[derive(Template)]
#[template(path = "instance/templates/legal.html")]
struct LegalTemplate {
    page: Page,
    title_key: &'static str,
    paragraphs: Vec<String>,
}

async fn imprint(page: Page) -> AppResult<Response> {
    legal(page, "nav-imprint", |s| &s.imprint)
}

async fn privacy(page: Page) -> AppResult<Response> {
    legal(page, "nav-privacy", |s| &s.privacy)
}

/// A legal text page; 404 while the admin has not written the text.
fn legal(page: Page, title_key: &'static str, text: fn(&InstanceSettings) -> &String) -> AppResult<Response> {
    let paragraphs = InstanceSettings::paragraphs(text(&page.instance));
    if paragraphs.is_empty() {
        return Err(AppError::not_found());
    }
    Ok(render(&LegalTemplate {
        page,
        title_key,
        paragraphs,
    }))
}

/// Maps the accent colour onto KERN's action tokens for light and dark mode. Served as a file
/// because the CSP forbids inline styles.
async fn theme_css(State(state): State<AppState>) -> Response {
    let settings = state.instance().await;
    let css = settings.accent_color.as_deref().and_then(rules::parse_hex_color).map_or_else(String::new, |_| {
        let c = settings.accent_color.as_deref().unwrap_or_default();
        // Dark mode needs a light variant with dark text on it.
        format!(
            ":root, [data-kern-theme=light], .kern-light {{ --kern-color-action-default: {c}; }}\n\
             @media (prefers-color-scheme: dark) {{ :root {{ --kern-color-action-default: color-mix(in oklch, {c} 40%, white); --kern-color-action-on-default: #000; }} }}\n\
             [data-kern-theme=dark], .kern-dark {{ --kern-color-action-default: color-mix(in oklch, {c} 40%, white); --kern-color-action-on-default: #000; }}\n"
        )
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        css,
    )
        .into_response()
}
