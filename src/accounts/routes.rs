//! Account endpoints: the JSON API (`/api/v1/auth/token`, `/api/v1/me`, registration) and the
//! login, logout and password pages. Handlers extract, call one service or rules function, render.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use super::auth::{Auth, AuthAllowingPasswordChange, Credential, MaybeAuth};
use super::model::{ApiToken, User};
use super::{Error, rules, service};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::csrf::CsrfToken;
use crate::web::extract::{ApiJson, HtmlForm};
use crate::web::{Page, cookies, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/auth/token",
            post(create_token).delete(revoke_current_token),
        )
        .route("/api/v1/accounts", post(register))
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/password", post(api_change_password))
        .route("/api/v1/me/tokens", get(list_tokens).post(create_named_token))
        .route("/api/v1/me/tokens/{id}", delete(revoke_token))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/settings/password", get(password_page).post(password_submit))
}

/// The account as the API shows it to its owner.
#[derive(Debug, Serialize)]
pub struct AccountView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: super::Role,
    pub status: super::Status,
    pub must_change_password: bool,
    pub language: Option<String>,
    pub created_at: chrono::NaiveDateTime,
}

impl From<&User> for AccountView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            email: u.email.clone(),
            role: u.role(),
            status: u.status(),
            must_change_password: u.must_change_password,
            language: u.language.clone(),
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    username: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Serialize)]
struct TokenResponse {
    token: String,
    token_type: &'static str,
    name: String,
    user: AccountView,
}

async fn create_token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<TokenRequest>,
) -> AppResult<impl IntoResponse> {
    let user = service::login(state.db(), &req.username, req.password, ip).await?;
    let name = req.name.unwrap_or_else(|| "api".into());
    let id = user.id;
    let (token, plain) = state.db().run(move |c| rules::create_token(c, id, &name)).await?;
    Ok(axum::Json(TokenResponse {
        token: plain,
        token_type: "Bearer",
        name: token.name,
        user: (&user).into(),
    }))
}

async fn revoke_current_token(
    State(state): State<AppState>,
    AuthAllowingPasswordChange(auth): AuthAllowingPasswordChange,
) -> AppResult<StatusCode> {
    let Credential::Token(token) = auth.credential else {
        return Err(AppError::bad_request(
            "no_token",
            "This request is not authenticated with an API token; send the token to revoke as Authorization: Bearer.",
        ));
    };
    let user_id = auth.user.id;
    state
        .db()
        .run(move |c| rules::revoke_token(c, user_id, token.id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn register(
    State(state): State<AppState>,
    ApiJson(form): ApiJson<service::RegistrationForm>,
) -> AppResult<(StatusCode, axum::Json<AccountView>)> {
    let user = service::register(state.db(), state.config().registration, form).await?;
    Ok((StatusCode::CREATED, axum::Json((&user).into())))
}

async fn me(AuthAllowingPasswordChange(auth): AuthAllowingPasswordChange) -> axum::Json<AccountView> {
    axum::Json((&auth.user).into())
}

#[derive(Debug, Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn api_change_password(
    State(state): State<AppState>,
    AuthAllowingPasswordChange(auth): AuthAllowingPasswordChange,
    ApiJson(req): ApiJson<PasswordChange>,
) -> AppResult<StatusCode> {
    service::change_password(state.db(), &auth.user, req.current_password, req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens(
    State(state): State<AppState>,
    Auth(auth): Auth,
) -> AppResult<axum::Json<Vec<ApiToken>>> {
    let id = auth.user.id;
    Ok(axum::Json(
        state
            .db()
            .run(move |c| ApiToken::for_user(c, id).map_err(Error::from))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
struct NamedToken {
    name: String,
}

async fn create_named_token(
    State(state): State<AppState>,
    Auth(auth): Auth,
    ApiJson(req): ApiJson<NamedToken>,
) -> AppResult<(StatusCode, axum::Json<serde_json::Value>)> {
    let id = auth.user.id;
    let (token, plain) = state
        .db()
        .run(move |c| rules::create_token(c, id, &req.name))
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "id": token.id, "name": token.name, "token": plain })),
    ))
}

async fn revoke_token(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<i64>,
) -> AppResult<StatusCode> {
    let user_id = auth.user.id;
    state
        .db()
        .run(move |c| rules::revoke_token(c, user_id, id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- HTML pages ---

#[derive(Template)]
#[template(path = "accounts/templates/login.html")]
struct LoginTemplate {
    page: Page,
    next: String,
    username: String,
    password_error: Option<String>,
    general_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only local paths are accepted as a redirect target after login, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

async fn login_page(page: Page, MaybeAuth(auth): MaybeAuth, Query(q): Query<NextQuery>) -> Response {
    if auth.is_some() {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    render(&LoginTemplate {
        page,
        next: safe_next(q.next.as_deref()),
        username: String::new(),
        password_error: None,
        general_error: None,
    })
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    csrf: String,
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login_submit(
    State(state): State<AppState>,
    page: Page,
    csrf: CsrfToken,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<LoginForm>,
) -> AppResult<Response> {
    csrf.verify(&form.csrf, &headers, &state.config().public_url)?;
    let next = safe_next(form.next.as_deref());
    let user = match service::login(state.db(), &form.username, form.password, ip).await {
        Ok(user) => user,
        Err(e @ (Error::Invalid { .. } | Error::Hash(_) | Error::Db(_))) => return Err(e.into()),
        Err(e) => {
            let status = match &e {
                Error::WrongCredentials => StatusCode::UNAUTHORIZED,
                Error::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::FORBIDDEN,
            };
            let (password_error, general_error) = match e {
                Error::WrongCredentials => (Some(e.to_string()), None),
                other => (None, Some(other.to_string())),
            };
            let mut response = render(&LoginTemplate {
                page,
                next,
                username: form.username.trim().to_owned(),
                password_error,
                general_error,
            });
            *response.status_mut() = status;
            return Ok(response);
        }
    };
    let user_id = user.id;
    let (_, cookie) = state
        .db()
        .run(move |c| rules::create_session(c, user_id, crate::db::now()))
        .await?;
    let target = if user.must_change_password {
        "/settings/password".to_owned()
    } else {
        next
    };
    let mut response = Redirect::to(&target).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(
            cookies::SESSION,
            &cookie,
            Some(rules::SESSION_LIFETIME.num_seconds()),
            state.config().is_https(),
        ),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct CsrfOnly {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    MaybeAuth(auth): MaybeAuth,
    csrf: CsrfToken,
    headers: HeaderMap,
    HtmlForm(form): HtmlForm<CsrfOnly>,
) -> AppResult<Response> {
    csrf.verify(&form.csrf, &headers, &state.config().public_url)?;
    if let Some(Credential::Session(session)) = auth.map(|a| a.credential) {
        state
            .db()
            .run(move |c| rules::delete_session(c, session.id))
            .await?;
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(cookies::SESSION, "", Some(0), state.config().is_https()),
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "accounts/templates/password.html")]
struct PasswordTemplate {
    page: Page,
    forced: bool,
    done: bool,
    field: &'static str,
    message: String,
}

#[derive(Debug, Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn password_page(
    page: Page,
    AuthAllowingPasswordChange(auth): AuthAllowingPasswordChange,
    Query(q): Query<DoneQuery>,
) -> Response {
    render(&PasswordTemplate {
        page,
        forced: auth.user.must_change_password,
        done: q.done.is_some(),
        field: "",
        message: String::new(),
    })
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

async fn password_submit(
    State(state): State<AppState>,
    page: Page,
    csrf: CsrfToken,
    headers: HeaderMap,
    AuthAllowingPasswordChange(auth): AuthAllowingPasswordChange,
    HtmlForm(form): HtmlForm<PasswordForm>,
) -> AppResult<Response> {
    csrf.verify(&form.csrf, &headers, &state.config().public_url)?;
    match service::change_password(state.db(), &auth.user, form.current_password, form.new_password).await {
        Ok(()) => {}
        Err(Error::Invalid { field, message }) => {
            let mut response = render(&PasswordTemplate {
                page,
                forced: auth.user.must_change_password,
                done: false,
                field,
                message,
            });
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(response);
        }
        Err(e) => return Err(e.into()),
    }
    // Changing the password ended every session, this one included; start a fresh one.
    let user_id = auth.user.id;
    let (_, cookie) = state
        .db()
        .run(move |c| rules::create_session(c, user_id, crate::db::now()))
        .await?;
    let mut response = Redirect::to("/settings/password?done=1").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(
            cookies::SESSION,
            &cookie,
            Some(rules::SESSION_LIFETIME.num_seconds()),
            state.config().is_https(),
        ),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/settings")), "/settings");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
