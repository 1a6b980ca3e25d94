//! The HTTP error type. Feature errors convert into [`AppError`], which picks the status and a
//! stable snake_case code. API clients get `{"error": code, "message": sentence}`; browsers get an
//! error page in the site's design (rendered by [`crate::web::errors`] from the same data).
//! Internal causes are logged with the request's span and never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::accounts;

#[derive(Debug, Clone, Serialize)]
pub struct AppError {
    #[serde(skip)]
    pub status: StatusCode,
    #[serde(rename = "error")]
    pub code: &'static str,
    pub message: String,
    /// The form field the message belongs to, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "This page does not exist. Check the address or go to the home page.",
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Logs the cause and answers with a sentence that reveals nothing about it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side. Please try again later; if it keeps happening, tell the administrators.",
        )
    }

    /// The generic error for a status produced outside our handlers (layers, routing).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            400 => ("bad_request", "The request could not be understood."),
            401 => ("unauthenticated", "You need to log in first."),
            403 => ("forbidden", "You are not allowed to do this."),
            404 => return Self::not_found(),
            405 => (
                "method_not_allowed",
                "This address does not accept this kind of request.",
            ),
            408 => ("timeout", "The request took too long. Please try again."),
            410 => ("gone", "This content has been deleted."),
            413 => (
                "payload_too_large",
                "The request is too large. Send less data at once.",
            ),
            415 => (
                "unsupported_media_type",
                "The request body has the wrong content type; send JSON with Content-Type: application/json.",
            ),
            422 => ("invalid_request", "The request contains invalid values."),
            429 => (
                "too_many_requests",
                "Too many requests; wait a moment and try again.",
            ),
            503 => ("unavailable", "The service is not ready; try again shortly."),
            s if s >= 500 => (
                "internal_error",
                "Something went wrong on our side. Please try again later.",
            ),
            _ => ("error", "The request failed."),
        };
        Self::new(status, code, message)
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
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("900"),
            );
        }
        // The error-page middleware re-renders this as HTML for browsers.
        response.extensions_mut().insert(self);
        response
    }
}

impl From<accounts::Error> for AppError {
    fn from(e: accounts::Error) -> Self {
        use accounts::Error as E;
        let message = e.to_string();
        let (status, code) = match &e {
            E::Invalid { field, .. } => {
                return Self {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "invalid_input",
                    message,
                    field: Some(field),
                };
            }
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
            E::Hash(_) | E::Db(_) => return Self::internal(&e),
        };
        Self::new(status, code, message)
    }
}

impl From<crate::db::Error> for AppError {
    fn from(e: crate::db::Error) -> Self {
        Self::internal(&e)
    }
}
