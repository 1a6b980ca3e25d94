//! `/admin` pages. Every handler takes the [`Admin`] extractor, so non-admins get 403 and
//! anonymous visitors 401 before anything runs.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::accounts::auth::Admin;
use crate::accounts::model::{Role, Status, User};
use crate::accounts::{Error, password, rules};
use crate::error::AppResult;
use crate::instance::rules::{self as instance_rules, SettingsForm};
use crate::state::AppState;
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::form::FormState;
use crate::web::{Page, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(users_page))
        .route("/admin/users/new", get(new_user_page).post(new_user_submit))
        .route("/admin/users/{name}/role", post(set_role))
        .route("/admin/users/{name}/{action}", post(account_action))
        .route("/admin/settings", get(settings_page).post(settings_submit))
}

/// One row of the user table.
pub struct UserRow {
    pub user: User,
    pub role: Role,
    pub status: Status,
}

#[derive(Template)]
#[template(path = "admin/templates/users.html")]
struct UsersTemplate {
    page: Page,
    query: String,
    pending: Vec<UserRow>,
    users: Vec<UserRow>,
    roles: [Role; 3],
    notice: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn users_page(
    State(state): State<AppState>,
    page: Page,
    _admin: Admin,
    Query(q): Query<UsersQuery>,
) -> AppResult<Response> {
    let term = q.q.clone();
    let users = state
        .db()
        .run(move |c| User::list(c, Some(&term), 500).map_err(Error::from))
        .await?;
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|u| UserRow {
            role: u.role(),
            status: u.status(),
            user: u,
        })
        .collect();
    let (pending, users): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.status == Status::Pending);
    let notice = match (q.done.as_deref(), q.error.as_deref()) {
        (_, Some("last_admin")) => Some(page.t("invalid-last-admin-role")),
        (Some(_), _) => Some(page.t("admin-saved")),
        _ => None,
    };
    Ok(render(&UsersTemplate {
        page,
        query: q.q,
        pending,
        users,
        roles: Role::ALL,
        notice,
    }))
}

#[derive(Debug, Deserialize)]
struct RoleForm {
    role: String,
}

/// After an action, back to the list; the last-admin refusal is reported there.
fn back(result: Result<User, Error>) -> AppResult<Response> {
    match result {
        Ok(_) => Ok(Redirect::to("/admin?done=1").into_response()),
        Err(Error::Invalid {
            key: "invalid-last-admin-role" | "invalid-last-admin-disable",
            ..
        }) => Ok(Redirect::to("/admin?error=last_admin").into_response()),
        Err(e) => Err(e.into()),
    }
}

async fn set_role(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> AppResult<Response> {
    let role = Role::parse(&form.role).ok_or_else(|| Error::invalid("role", "invalid-role"))?;
    back(state.db().run(move |c| rules::set_role(c, &name, role)).await)
}

/// `disable` or `approve` (which also re-enables a disabled account).
async fn account_action(
    State(state): State<AppState>,
    _admin: Admin,
    Path((name, action)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let result = match action.as_str() {
        "disable" => state.db().run(move |c| rules::disable(c, &name)).await,
        "approve" => state.db().run(move |c| rules::activate(c, &name)).await,
        _ => return Err(crate::error::AppError::not_found()),
    };
    back(result)
}

#[derive(Template)]
#[template(path = "admin/templates/new_user.html")]
struct NewUserTemplate {
    page: Page,
    form: FormState,
    roles: [Role; 3],
    created: Option<(String, String)>,
}

async fn new_user_page(page: Page, _admin: Admin) -> Response {
    let form = FormState::new().with_value("role", "member");
    render(&NewUserTemplate {
        page,
        form,
        roles: Role::ALL,
        created: None,
    })
}

#[derive(Debug, Deserialize)]
struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// Validates every field of the new account at once, so the form shows all problems together.
fn new_account(form: &NewUserForm) -> Result<(String, String, String, Role), Vec<Error>> {
    let username = rules::validate_local_name("username", &form.username);
    let email = rules::validate_email(&form.email);
    let display_name = rules::validate_display_name(
        &form.display_name,
        username.as_deref().unwrap_or(form.username.trim()),
    );
    let role = Role::parse(&form.role).ok_or_else(|| Error::invalid("role", "invalid-role"));
    match (username, email, display_name, role) {
        (Ok(u), Ok(e), Ok(d), Ok(r)) => Ok((u, e, d, r)),
        (u, e, d, r) => Err([u.err(), e.err(), d.err(), r.err()]
            .into_iter()
            .flatten()
            .collect()),
    }
}

async fn new_user_submit(
    State(state): State<AppState>,
    page: Page,
    _admin: Admin,
    CsrfForm(form): CsrfForm<NewUserForm>,
) -> AppResult<Response> {
    let values = FormState::new()
        .with_value("username", form.username.trim())
        .with_value("display_name", form.display_name.trim())
        .with_value("email", form.email.trim())
        .with_value("role", form.role.clone());
    let refuse = |page: Page, errors: Vec<Error>, values: FormState| {
        let status = if errors.iter().any(|e| matches!(e, Error::NameTaken(_))) {
            StatusCode::CONFLICT
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let lang = page.lang;
        let form = errors
            .iter()
            .fold(values, |f, e| crate::accounts::routes::form_error(lang, e, f));
        let mut response = render(&NewUserTemplate {
            page,
            form,
            roles: Role::ALL,
            created: None,
        });
        *response.status_mut() = status;
        response
    };
    let (username, email, display_name, role) = match new_account(&form) {
        Ok(v) => v,
        Err(errors) => return Ok(refuse(page, errors, values)),
    };
    // The password is a one-time password, shown once to the admin, changed at first login.
    let otp = password::one_time();
    let password_hash = crate::accounts::service::hash_password(otp.clone()).await?;
    let input = rules::AccountInput {
        username,
        display_name,
        email,
        password_hash,
        role,
        status: Status::Active,
        must_change_password: true,
    };
    match state.db().run(move |c| rules::create_user(c, &input)).await {
        Ok(user) => {
            let form = FormState::new().with_value("role", "member");
            let created = Some((user.username, otp));
            Ok(render(&NewUserTemplate {
                page,
                form,
                roles: Role::ALL,
                created,
            }))
        }
        Err(e @ Error::NameTaken(_)) => Ok(refuse(page, vec![e], values)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/templates/settings.html")]
struct InstanceSettingsTemplate {
    page: Page,
    values: SettingsForm,
    /// (field, label key, hint key, current text) of the multi-line fields.
    text_fields: Vec<(&'static str, &'static str, &'static str, String)>,
    form: FormState,
    saved: bool,
}

impl InstanceSettingsTemplate {
    fn new(page: Page, values: SettingsForm, form: FormState, saved: bool) -> Self {
        let text_fields = vec![
            (
                "description",
                "admin-instance-description",
                "hint-instance-description",
                values.description.clone(),
            ),
            ("imprint", "admin-imprint", "hint-imprint", values.imprint.clone()),
            ("privacy", "admin-privacy", "hint-privacy", values.privacy.clone()),
        ];
        Self {
            page,
            values,
            text_fields,
            form,
            saved,
        }
    }
}

#[derive(Debug, Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

async fn settings_page(page: Page, _admin: Admin, Query(q): Query<SavedQuery>) -> Response {
    let values = instance_rules::form_from(&page.instance);
    render(&InstanceSettingsTemplate::new(
        page,
        values,
        FormState::new(),
        q.saved.is_some(),
    ))
}

#[derive(Debug, Deserialize)]
struct SettingsSubmit {
    #[serde(flatten)]
    values: SettingsForm,
}

async fn settings_submit(
    State(state): State<AppState>,
    page: Page,
    _admin: Admin,
    CsrfForm(form): CsrfForm<SettingsSubmit>,
) -> AppResult<Response> {
    match instance_rules::validate(&form.values) {
        Ok(values) => {
            let defaults = crate::instance::InstanceSettings::from_config(state.config());
            state
                .db()
                .run(move |c| instance_rules::save(c, &values, &defaults))
                .await?;
            state.invalidate_instance();
            Ok(Redirect::to("/admin/settings?saved=1").into_response())
        }
        Err(problems) => {
            let mut errors = FormState::new();
            for (field, key) in problems.0 {
                errors.error(page.lang, field, key, &[]);
            }
            let mut response = render(&InstanceSettingsTemplate::new(page, form.values, errors, false));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
    }
}
