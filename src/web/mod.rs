//! The web UI shell: layout, page context, static assets, error pages, and the home page.
//! Features render their own pages with [`Page`] and templates in their own folders.

pub mod assets;
pub mod client_ip;
pub mod cookies;
pub mod csrf;
pub mod errors;
pub mod extract;
pub mod security;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::accounts::auth::MaybeAuth;
use crate::error::AppError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(home)).merge(assets::routes())
}

/// The signed-in user as pages show them.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub username: String,
    pub display_name: String,
    pub is_admin: bool,
}

/// What every page's layout needs: instance name, the user, and the CSRF token for its forms
/// (the logout button is a form on every page).
#[derive(Debug, Clone)]
pub struct Page {
    pub instance_name: String,
    pub user: Option<UserSummary>,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let MaybeAuth(auth) = MaybeAuth::from_request_parts(parts, state).await?;
        let csrf = csrf::CsrfToken::from_request_parts(parts, state).await?;
        Ok(Self {
            instance_name: state.config().instance.name.clone(),
            user: auth.map(|a| UserSummary {
                is_admin: a.user.is_admin(),
                username: a.user.username,
                display_name: a.user.display_name,
            }),
            csrf: csrf.0,
        })
    }
}

/// Renders a template into an HTML response; a rendering failure is an internal error.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => AppError::internal(&e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "web/templates/home.html")]
struct HomeTemplate {
    page: Page,
    description: String,
    registration_open: bool,
}

async fn home(page: Page, axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    render(&HomeTemplate {
        page,
        description: state.config().instance.description.clone(),
        registration_open: state.config().registration != crate::config::Registration::Closed,
    })
}
