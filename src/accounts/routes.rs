//! Account endpoints: the JSON API (`/api/v1/auth/token`, `/api/v1/me`, registration) and the
//! login, logout and password pages. Handlers extract, call one service or rules function, render.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use super::auth::{Auth, AuthAllowingPasswordChange, Credential, MaybeAuth};
use super::model::{ApiToken, User};
use super::{Error, rules, service};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::extract::ApiJson;
use crate::web::form::FormState;
use crate::web::i18n::{self, Lang};
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
        .route("/register", get(register_page).post(register_submit))
        .route("/settings", get(settings_page))
        .route("/settings/profile", post(profile_submit))
        .route("/settings/avatar/remove", post(avatar_remove_submit))
        .route("/settings/tokens", post(token_submit))
        .route("/settings/tokens/{id}/revoke", post(token_revoke))
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
    #[serde(with = "crate::db::utc")]
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
        return Err(AppError::bad_request("no_token", "error-no-token"));
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
    let user = service::register(state.db(), state.instance().await.registration, form).await?;
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
    ClientIp(ip): ClientIp,
    AuthAllowingPasswordChange(auth): AuthAllowingPasswordChange,
    ApiJson(req): ApiJson<PasswordChange>,
) -> AppResult<StatusCode> {
    service::change_password(state.db(), &auth.user, req.current_password, req.new_password, ip).await?;
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

/// Turns an account error into the form's state: a field error next to its field, anything else
/// as an alert above the form.
pub(crate) fn form_error(lang: Lang, e: &Error, mut form: FormState) -> FormState {
    let (key, args) = e.message_key();
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let text = i18n::translate(lang, key, &args);
    match e {
        Error::Invalid { field, .. } => form.push_error(field, text),
        Error::NameTaken(_) => form.push_error("username", text),
        Error::WrongCredentials => form.push_error("password", text),
        _ => form.general = Some(text),
    }
    form
}

fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::WrongCredentials | Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        Error::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        Error::NameTaken(_) => StatusCode::CONFLICT,
        Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::FORBIDDEN,
    }
}

fn with_status(mut response: Response, status: StatusCode) -> Response {
    *response.status_mut() = status;
    response
}

fn session_cookie(state: &AppState, value: &str) -> axum::http::HeaderValue {
    cookies::set(
        cookies::SESSION,
        value,
        Some(rules::SESSION_LIFETIME.num_seconds()),
        state.config().is_https(),
    )
}

#[derive(Template)]
#[template(path = "accounts/templates/login.html")]
struct LoginTemplate {
    page: Page,
    next: String,
    form: FormState,
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only local paths are accepted as a redirect target, never another site.
pub fn safe_next(next: Option<&str>) -> String {
    // Browsers drop tabs and newlines from URLs, so "/\t/evil.example" would become
    // "//evil.example": refuse every control and space character, not only a leading "//".
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 2048
                && !n
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '\\') =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

async fn login_page(page: Page, Query(q): Query<NextQuery>) -> Response {
    if page.user.is_some() {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    render(&LoginTemplate {
        page,
        next: safe_next(q.next.as_deref()),
        form: FormState::new(),
    })
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login_submit(
    State(state): State<AppState>,
    page: Page,
    ClientIp(ip): ClientIp,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> AppResult<Response> {
    let next = safe_next(form.next.as_deref());
    let user = match service::login(state.db(), &form.username, form.password, ip).await {
        Ok(user) => user,
        Err(e @ (Error::Hash(_) | Error::Key(_) | Error::Db(_))) => return Err(e.into()),
        Err(e) => {
            let status = status_of(&e);
            let state_ = form_error(
                page.lang,
                &e,
                FormState::new().with_value("username", form.username.trim()),
            );
            let mut response = with_status(
                render(&LoginTemplate {
                    page,
                    next,
                    form: state_,
                }),
                status,
            );
            if status == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("900"));
            }
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
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, &cookie));
    if let Some(lang) = user.language.as_deref() {
        response
            .headers_mut()
            .append(header::SET_COOKIE, lang_cookie(&state, lang));
    }
    Ok(response)
}

/// The language cookie mirrors the account's setting, so pages rendered without looking up the
/// session (error pages) are in the user's language too.
fn lang_cookie(state: &AppState, lang: &str) -> axum::http::HeaderValue {
    let age = if lang.is_empty() { 0 } else { 365 * 24 * 3600 };
    cookies::set(cookies::LANG, lang, Some(age), state.config().is_https())
}

async fn logout(
    State(state): State<AppState>,
    MaybeAuth(auth): MaybeAuth,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
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
#[template(path = "accounts/templates/register.html")]
struct RegisterTemplate {
    page: Page,
    form: FormState,
    pending: bool,
}

async fn register_page(page: Page) -> Response {
    if page.user.is_some() {
        return Redirect::to("/").into_response();
    }
    render(&RegisterTemplate {
        page,
        form: FormState::new(),
        pending: false,
    })
}

#[derive(Debug, Deserialize)]
struct RegisterForm {
    #[serde(flatten)]
    account: service::RegistrationForm,
}

async fn register_submit(
    State(state): State<AppState>,
    page: Page,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> AppResult<Response> {
    let values = FormState::new()
        .with_value("username", form.account.username.trim())
        .with_value("display_name", form.account.display_name.trim())
        .with_value("email", form.account.email.trim());
    let user = match service::register(state.db(), page.instance.registration, form.account).await {
        Ok(user) => user,
        Err(e @ (Error::Hash(_) | Error::Key(_) | Error::Db(_))) => return Err(e.into()),
        Err(e) => {
            let status = status_of(&e);
            let form = form_error(page.lang, &e, values);
            return Ok(with_status(
                render(&RegisterTemplate {
                    page,
                    form,
                    pending: false,
                }),
                status,
            ));
        }
    };
    if user.status() != super::Status::Active {
        return Ok(render(&RegisterTemplate {
            page,
            form: FormState::new(),
            pending: true,
        }));
    }
    let (id, lang) = (user.id, page.lang.code());
    let (_, cookie) = state
        .db()
        .run(move |c| {
            // A new account starts in the language the visitor was using.
            rules::set_language(c, id, Some(lang))?;
            rules::create_session(c, id, crate::db::now())
        })
        .await?;
    let mut response = Redirect::to("/").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, &cookie));
    Ok(response)
}

#[derive(Template)]
#[template(path = "accounts/templates/password.html")]
struct PasswordTemplate {
    page: Page,
    forced: bool,
    done: bool,
    form: FormState,
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
        form: FormState::new(),
    })
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

async fn password_submit(
    State(state): State<AppState>,
    page: Page,
    ClientIp(ip): ClientIp,
    AuthAllowingPasswordChange(auth): AuthAllowingPasswordChange,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> AppResult<Response> {
    match service::change_password(
        state.db(),
        &auth.user,
        form.current_password,
        form.new_password,
        ip,
    )
    .await
    {
        Ok(()) => {}
        Err(e @ (Error::Hash(_) | Error::Key(_) | Error::Db(_))) => return Err(e.into()),
        Err(e) => {
            let status = status_of(&e);
            let form = form_error(page.lang, &e, FormState::new());
            let forced = auth.user.must_change_password;
            return Ok(with_status(
                render(&PasswordTemplate {
                    page,
                    forced,
                    done: false,
                    form,
                }),
                status,
            ));
        }
    }
    // Changing the password ended every session, this one included; start a fresh one.
    let user_id = auth.user.id;
    let (_, cookie) = state
        .db()
        .run(move |c| rules::create_session(c, user_id, crate::db::now()))
        .await?;
    let mut response = Redirect::to("/settings/password?done=1").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, &cookie));
    Ok(response)
}

#[derive(Template)]
#[template(path = "accounts/templates/settings.html")]
struct SettingsTemplate {
    page: Page,
    account: User,
    role_key: String,
    form: FormState,
    token_form: FormState,
    tokens: Vec<ApiToken>,
    new_token: Option<String>,
    saved: bool,
    avatar: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

/// Renders the settings page with the given form states.
async fn settings_view(
    state: &AppState,
    page: Page,
    user: User,
    form: Option<FormState>,
    token_form: FormState,
    new_token: Option<String>,
    saved: bool,
) -> AppResult<Response> {
    let (id, name) = (user.id, user.username.clone());
    let (tokens, images) = state
        .db()
        .run(move |c| -> Result<_, Error> {
            Ok((
                ApiToken::for_user(c, id)?,
                crate::media::model::images_of(c, &name)?,
            ))
        })
        .await?;
    let form = form.unwrap_or_else(|| profile_form(&user));
    let role_key = format!("role-{}", user.role().as_str());
    Ok(render(&SettingsTemplate {
        page,
        account: user,
        role_key,
        form,
        token_form,
        tokens,
        new_token,
        saved,
        avatar: images.avatar.map(|m| m.path),
    }))
}

fn profile_form(user: &User) -> FormState {
    FormState::new()
        .with_value("display_name", user.display_name.clone())
        .with_value("language", user.language.clone().unwrap_or_default())
}

/// Routes that take uploads; the app gives them a larger body limit.
pub fn upload_routes() -> Router<AppState> {
    Router::new()
        .route("/settings/avatar", post(avatar_submit))
        .route(
            "/api/v1/me/avatar",
            axum::routing::put(api_put_avatar).delete(api_delete_avatar),
        )
}

/// Stores (or with `None` removes) the user's avatar and tells their followers.
async fn set_avatar(
    state: &AppState,
    user: &User,
    image: Option<crate::media::Processed>,
) -> AppResult<User> {
    let urls = crate::federation::Urls::new(state.config());
    let (id, name) = (user.id, user.username.clone());
    let updated = state
        .db()
        .run(move |c| {
            crate::db::write_tx(c, |c| -> Result<User, Error> {
                let media = image
                    .as_ref()
                    .map(|i| crate::media::model::store(c, i))
                    .transpose()?;
                crate::media::model::set_image(c, &name, crate::media::Purpose::Avatar, media)?;
                let updated = User::find(c, id)?.ok_or(Error::Unauthenticated)?;
                crate::federation::actors::send_profile_update(c, &urls, &updated)?;
                Ok(updated)
            })
        })
        .await?;
    state.wake_delivery();
    Ok(updated)
}

async fn avatar_submit(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    upload: crate::media::routes::UploadForm,
) -> AppResult<Response> {
    match crate::media::routes::process(upload.file, crate::media::Purpose::Avatar).await {
        Ok(image) => {
            set_avatar(&state, &auth.user, Some(image)).await?;
            Ok(Redirect::to("/settings?saved=1").into_response())
        }
        Err(crate::media::Error::Db(e)) => Err(AppError::internal(&e)),
        Err(e) => {
            let mut form = profile_form(&auth.user);
            form.push_error("avatar", e.localized(page.lang));
            let response =
                settings_view(&state, page, auth.user, Some(form), FormState::new(), None, false).await?;
            Ok(with_status(response, StatusCode::UNPROCESSABLE_ENTITY))
        }
    }
}

async fn avatar_remove_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    set_avatar(&state, &auth.user, None).await?;
    Ok(Redirect::to("/settings?saved=1").into_response())
}

fn avatar_json(
    state: &AppState,
    user: &User,
    avatar: Option<crate::media::MediaRef>,
) -> axum::Json<serde_json::Value> {
    let base = crate::federation::Urls::new(state.config()).base().to_owned();
    axum::Json(serde_json::json!({
        "username": user.username,
        "avatar_url": avatar.map(|m| format!("{base}{}", m.path)),
    }))
}

/// `PUT /api/v1/me/avatar` with the image file as the body.
async fn api_put_avatar(
    State(state): State<AppState>,
    Auth(auth): Auth,
    body: axum::body::Body,
) -> AppResult<axum::Json<serde_json::Value>> {
    let bytes = crate::media::routes::read_body(body).await?;
    let image = crate::media::routes::process(Ok(bytes), crate::media::Purpose::Avatar).await?;
    let user = set_avatar(&state, &auth.user, Some(image)).await?;
    let name = user.username.clone();
    let images = state
        .db()
        .run(move |c| crate::media::model::images_of(c, &name).map_err(Error::from))
        .await?;
    Ok(avatar_json(&state, &user, images.avatar))
}

async fn api_delete_avatar(
    State(state): State<AppState>,
    Auth(auth): Auth,
) -> AppResult<axum::Json<serde_json::Value>> {
    let user = set_avatar(&state, &auth.user, None).await?;
    Ok(avatar_json(&state, &user, None))
}

async fn settings_page(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Query(q): Query<SavedQuery>,
) -> AppResult<Response> {
    settings_view(
        &state,
        page,
        auth.user,
        None,
        FormState::new(),
        None,
        q.saved.is_some(),
    )
    .await
}

#[derive(Debug, Deserialize)]
struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    language: String,
}

async fn profile_submit(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    CsrfForm(form): CsrfForm<ProfileForm>,
) -> AppResult<Response> {
    let user = auth.user.clone();
    let (name, language) = (form.display_name.clone(), form.language.clone());
    let urls = crate::federation::Urls::new(state.config());
    match state
        .db()
        .run(move |c| {
            crate::db::write_tx(c, |c| {
                let updated = rules::update_profile(c, &user, &name, &language)?;
                // Followers' servers show the name; the language is nobody else's business.
                if updated.display_name != user.display_name {
                    crate::federation::actors::send_profile_update(c, &urls, &updated)?;
                }
                Ok(updated)
            })
        })
        .await
    {
        Ok(user) => {
            state.wake_delivery();
            let mut response = Redirect::to("/settings?saved=1").into_response();
            let lang = user.language.as_deref().unwrap_or_default();
            response
                .headers_mut()
                .append(header::SET_COOKIE, lang_cookie(&state, lang));
            Ok(response)
        }
        Err(e @ Error::Invalid { .. }) => {
            let values = FormState::new()
                .with_value("display_name", form.display_name)
                .with_value("language", form.language);
            let form = form_error(page.lang, &e, values);
            let response =
                settings_view(&state, page, auth.user, Some(form), FormState::new(), None, false).await?;
            Ok(with_status(response, StatusCode::UNPROCESSABLE_ENTITY))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    name: String,
}

async fn token_submit(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    CsrfForm(form): CsrfForm<TokenForm>,
) -> AppResult<Response> {
    let (id, name) = (auth.user.id, form.name.clone());
    match state.db().run(move |c| rules::create_token(c, id, &name)).await {
        // Shown on this response only: the plain token is never stored.
        Ok((_, plain)) => {
            settings_view(
                &state,
                page,
                auth.user,
                None,
                FormState::new(),
                Some(plain),
                false,
            )
            .await
        }
        Err(e @ Error::Invalid { .. }) => {
            let token_form = form_error(page.lang, &e, FormState::new().with_value("name", form.name));
            let response = settings_view(&state, page, auth.user, None, token_form, None, false).await?;
            Ok(with_status(response, StatusCode::UNPROCESSABLE_ENTITY))
        }
        Err(e) => Err(e.into()),
    }
}

async fn token_revoke(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let user_id = auth.user.id;
    state
        .db()
        .run(move |c| rules::revoke_token(c, user_id, id))
        .await?;
    Ok(Redirect::to("/settings?saved=1").into_response())
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
        assert_eq!(safe_next(Some("/\t/evil.example/")), "/");
        assert_eq!(safe_next(Some("/\n")), "/");
        assert_eq!(safe_next(Some("/ /evil")), "/");
        assert_eq!(safe_next(Some("/admin?q=a%20b")), "/admin?q=a%20b");
    }
}
