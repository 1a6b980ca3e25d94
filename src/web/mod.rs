//! The web UI shell: layout (KERN design system), page context, translations, static assets,
//! error pages, language choice and the home page. Features render their own pages with [`Page`]
//! and templates in their own folders; see docs/architecture.md ("Adding a page").

pub mod assets;
pub mod client_ip;
pub mod cookies;
pub mod csrf;
pub mod errors;
pub mod extract;
pub mod form;
pub mod i18n;
pub mod security;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};

use self::csrf::CsrfForm;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use self::i18n::Lang;
use crate::accounts::auth::MaybeAuth;
use crate::error::{AppError, AppResult};
use crate::instance::InstanceSettings;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/language", post(set_language))
        .merge(assets::routes())
}

/// The signed-in user as pages show them.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub username: String,
    pub display_name: String,
    pub is_admin: bool,
    /// Unread notifications, for the badge in the user menu.
    pub unread: i64,
}

/// What every page's layout needs: language, instance, user, the CSRF token for its forms (the
/// logout button is a form on every page) and the current path (for `aria-current`).
#[derive(Debug, Clone)]
pub struct Page {
    pub lang: Lang,
    pub instance: Arc<InstanceSettings>,
    pub user: Option<UserSummary>,
    pub csrf: String,
    pub path: String,
}

/// The language for a request without looking at the database (error pages, anonymous users).
pub fn request_lang(headers: &HeaderMap, user_pref: Option<&str>) -> Lang {
    i18n::negotiate(
        user_pref,
        cookies::get(headers, cookies::LANG).as_deref(),
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
    )
}

impl FromRequestParts<AppState> for Page {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let MaybeAuth(auth) = MaybeAuth::from_request_parts(parts, state).await?;
        let csrf = csrf::CsrfToken::from_request_parts(parts, state).await?;
        let lang = request_lang(
            &parts.headers,
            auth.as_ref().and_then(|a| a.user.language.as_deref()),
        );
        let unread = match &auth {
            Some(a) => {
                let id = a.user.id;
                // A failure here must not break the page: the badge is left out.
                state
                    .db()
                    .run(move |c| crate::groups::model::unread_count(c, id).map_err(crate::db::Error::from))
                    .await
                    .unwrap_or(0)
            }
            None => 0,
        };
        Ok(Self {
            lang,
            instance: state.instance().await,
            user: auth.map(|a| UserSummary {
                is_admin: a.user.is_admin(),
                username: a.user.username,
                display_name: a.user.display_name,
                unread,
            }),
            csrf: csrf.0,
            path: parts.uri.path().to_owned(),
        })
    }
}

impl Page {
    /// The translation of `key`.
    pub fn t(&self, key: &str) -> String {
        i18n::translate(self.lang, key, &[])
    }

    /// The translation of `key` with one `{ $name }` placeable.
    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        i18n::translate(self.lang, key, &[(name, value)])
    }

    /// A sentence with a count: `{key}-one` when there is exactly one (both languages only
    /// distinguish one from many), else `key`; `{ $count }` becomes the formatted number.
    pub fn tn<N: Copy + Into<i64>>(&self, key: &str, count: &N) -> String {
        let count: i64 = (*count).into();
        let one = format!("{key}-one");
        let key = if count == 1 && i18n::has(self.lang, &one) {
            one.as_str()
        } else {
            key
        };
        i18n::translate(
            self.lang,
            key,
            &[("count", &i18n::format_number(self.lang, count))],
        )
    }

    pub fn date(&self, dt: &chrono::NaiveDateTime) -> String {
        i18n::format_datetime(self.lang, *dt)
    }

    pub fn number(&self, n: &i64) -> String {
        i18n::format_number(self.lang, *n)
    }

    /// `aria-current="page"` for the navigation link of the current section.
    pub fn current(&self, prefix: &str) -> &'static str {
        let here = if prefix == "/" {
            self.path == "/"
        } else {
            self.path.starts_with(prefix)
        };
        if here { "page" } else { "false" }
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.is_admin)
    }

    pub fn languages(&self) -> [Lang; 2] {
        Lang::ALL
    }
}

/// Renders a template into an HTML response; a rendering failure is an internal error.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => AppError::internal(&e).into_response(),
    }
}

/// Sends a user who still has a one-time password to the password page before anything else.
/// The API enforces the same through the `Auth` extractor.
pub async fn require_password_change(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let exempt = req.method() != Method::GET
        || path.starts_with("/api/")
        || path.starts_with("/static/")
        // Legal pages stay reachable whatever the account's state.
        || matches!(path, "/settings/password" | "/healthz" | "/readyz" | "/about" | "/imprint" | "/privacy");
    if exempt {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let must_change = matches!(
        MaybeAuth::from_request_parts(&mut parts, &state).await,
        Ok(MaybeAuth(Some(a))) if a.user.must_change_password
    );
    if must_change {
        return Redirect::to("/settings/password").into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

#[derive(Template)]
#[template(path = "web/templates/home.html")]
struct HomeTemplate {
    page: Page,
    registration_open: bool,
    /// The signed-in user's groups: (slug, title).
    my_groups: Vec<(String, String)>,
}

async fn home(State(state): State<AppState>, page: Page) -> Result<Response, AppError> {
    let registration_open = page.instance.registration != crate::config::Registration::Closed;
    let my_groups = match &page.user {
        Some(u) => {
            let name = u.username.clone();
            state
                .db()
                .run(move |c| crate::groups::model::groups_of(c, &name).map_err(crate::db::Error::from))
                .await?
        }
        None => Vec::new(),
    };
    Ok(render(&HomeTemplate {
        page,
        registration_open,
        my_groups,
    }))
}

#[derive(Debug, Deserialize)]
struct LanguageForm {
    lang: String,
    #[serde(default)]
    back: String,
}

/// Chooses the language: stored on the account when logged in, else in a cookie.
async fn set_language(
    State(state): State<AppState>,
    MaybeAuth(auth): MaybeAuth,
    CsrfForm(form): CsrfForm<LanguageForm>,
) -> AppResult<Response> {
    let Some(lang) = Lang::parse(&form.lang) else {
        return Err(AppError::bad_request("invalid_language", "invalid-language"));
    };
    if let Some(a) = auth {
        let id = a.user.id;
        state
            .db()
            .run(move |c| crate::accounts::rules::set_language(c, id, Some(lang.code())))
            .await?;
    }
    let back = crate::accounts::routes::safe_next(Some(&form.back));
    let mut response = Redirect::to(&back).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(
            cookies::LANG,
            lang.code(),
            Some(365 * 24 * 3600),
            state.config().is_https(),
        ),
    );
    Ok(response)
}
