//! The HTTP error type. Feature errors convert into [`AppError`], which picks the status and a
//! stable snake_case code, and keeps the translation key of the sentence the user sees. API clients
//! get `{"error": code, "message": English sentence}`; browsers get an error page in the site's
//! design and language (rendered by [`crate::web::errors`] from the same value). Internal causes
//! are logged with the request's span and never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::accounts;
use crate::web::i18n::{self, Lang};

#[derive(Debug, Clone, Serialize)]
pub struct AppError {
    #[serde(skip)]
    pub status: StatusCode,
    #[serde(rename = "error")]
    pub code: &'static str,
    /// The English sentence (the API's language).
    pub message: String,
    /// The form field the message belongs to, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    #[serde(skip)]
    pub key: &'static str,
    #[serde(skip)]
    pub args: Vec<(&'static str, String)>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// An error whose sentence is the translation `key` (see `src/web/i18n/*.ftl`).
    pub fn new(status: StatusCode, code: &'static str, key: &'static str) -> Self {
        Self::with_args(status, code, key, Vec::new())
    }

    pub fn with_args(
        status: StatusCode,
        code: &'static str,
        key: &'static str,
        args: Vec<(&'static str, String)>,
    ) -> Self {
        let mut e = Self {
            status,
            code,
            message: String::new(),
            field: None,
            key,
            args,
        };
        e.message = e.localized(Lang::En);
        e
    }

    /// The sentence in `lang`.
    pub fn localized(&self, lang: Lang) -> String {
        let args: Vec<(&str, &str)> = self.args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        i18n::translate(lang, self.key, &args)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "error-status-404")
    }

    pub fn bad_request(code: &'static str, key: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, key)
    }

    /// Logs the cause and answers with a sentence that reveals nothing about it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "error-internal",
        )
    }

    /// The generic error for a status produced outside our handlers (layers, routing).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, key) = match status.as_u16() {
            400 => ("bad_request", "error-status-400"),
            401 => ("unauthenticated", "error-status-401"),
            403 => ("forbidden", "error-status-403"),
            404 => ("not_found", "error-status-404"),
            405 => ("method_not_allowed", "error-status-405"),
            408 => ("timeout", "error-status-408"),
            410 => ("gone", "error-status-410"),
            413 => ("payload_too_large", "error-status-413"),
            415 => ("unsupported_media_type", "error-status-415"),
            422 => ("invalid_request", "error-status-422"),
            429 => ("too_many_requests", "error-status-429"),
            503 => ("unavailable", "error-status-503"),
            s if s >= 500 => ("internal_error", "error-status-500"),
            _ => ("error", "error-status-other"),
        };
        Self::new(status, code, key)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(&self)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("900"));
        }
        // The error-page middleware re-renders this as HTML for browsers.
        response.extensions_mut().insert(self);
        response
    }
}

impl From<accounts::Error> for AppError {
    fn from(e: accounts::Error) -> Self {
        use accounts::Error as E;
        let (status, code) = match &e {
            E::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            E::NameTaken(_) => (StatusCode::CONFLICT, "name_taken"),
            E::WrongCredentials => (StatusCode::UNAUTHORIZED, "wrong_credentials"),
            E::TooManyAttempts => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            E::Pending => (StatusCode::FORBIDDEN, "account_pending"),
            E::Disabled => (StatusCode::FORBIDDEN, "account_disabled"),
            E::RegistrationClosed => (StatusCode::FORBIDDEN, "registration_closed"),
            E::PasswordChangeRequired => (StatusCode::FORBIDDEN, "password_change_required"),
            E::UserNotFound(_) => (StatusCode::NOT_FOUND, "user_not_found"),
            E::TokenNotFound => (StatusCode::NOT_FOUND, "token_not_found"),
            E::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            E::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            E::Hash(_) | E::Key(_) | E::Db(_) => return Self::internal(&e),
        };
        let (key, args) = e.message_key();
        let mut out = Self::with_args(status, code, key, args);
        if let E::Invalid { field, .. } = e {
            out.field = Some(field);
        }
        out
    }
}

impl From<crate::db::Error> for AppError {
    fn from(e: crate::db::Error) -> Self {
        Self::internal(&e)
    }
}
