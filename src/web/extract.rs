//! Body extractors whose rejections become our error format instead of axum's plain text.

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// JSON body for the API. Malformed JSON is a 400 with a sentence; an oversized body is a 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(AppError::with_args(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "error-malformed-json",
                vec![("detail", inner_text(&e.body_text()))],
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(AppError::with_args(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "error-invalid-json",
                vec![("detail", inner_text(&e.body_text()))],
            )),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "error-json-content-type",
            )),
            Err(e) => Err(AppError::from_status(e.status())),
        }
    }
}

/// Form body for HTML pages.
pub struct HtmlForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for HtmlForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(Self(v)),
            Err(
                FormRejection::FailedToDeserializeForm(_) | FormRejection::FailedToDeserializeFormBody(_),
            ) => Err(AppError::bad_request("invalid_form", "error-invalid-form")),
            Err(FormRejection::InvalidFormContentType(_)) => Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "error-form-content-type",
            )),
            Err(e) => Err(AppError::from_status(e.status())),
        }
    }
}

/// serde's message without axum's "Failed to deserialize the JSON body into the target type: " prefix.
fn inner_text(text: &str) -> String {
    text.rsplit_once(": ")
        .map_or(text, |(_, rest)| rest)
        .trim_end_matches('.')
        .to_owned()
}
