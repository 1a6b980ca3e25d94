//! Serving stored images, and the upload plumbing the features' upload routes share.

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Error, Processed, Purpose, model};
use crate::accounts::auth::MaybeAuth;
use crate::db;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::csrf::CsrfToken;

/// Largest image file we accept.
pub const MAX_UPLOAD_BYTES: usize = 8 * 1024 * 1024;
/// The request body limit on upload routes. Twice the file limit, so that a file somewhat too
/// large still reaches the handler and gets the form back with its sentence; the reader stops at
/// the file limit anyway.
pub const MAX_UPLOAD_BODY: usize = 2 * MAX_UPLOAD_BYTES;

pub fn routes() -> Router<AppState> {
    Router::new().route("/media/{file}", get(serve))
}

async fn serve(
    State(state): State<AppState>,
    MaybeAuth(auth): MaybeAuth,
    Path(file): Path<String>,
) -> AppResult<Response> {
    let Some((sha, ext)) = file.split_once('.') else {
        return Err(AppError::not_found());
    };
    if sha.len() != 64
        || !sha
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(AppError::not_found());
    }
    let sha = sha.to_owned();
    let ext = ext.to_owned();
    let viewer = auth.map(|a| a.user);
    let found = state
        .db()
        .run(move |c| -> Result<_, db::Error> {
            let Some(m) = model::by_sha(c, &sha)? else {
                return Ok(None);
            };
            let seen = model::visibility(c, m.id, viewer.as_ref())?;
            Ok(Some((m, seen)))
        })
        .await?;
    let Some((m, seen)) = found else {
        return Err(AppError::not_found());
    };
    if seen == model::Seen::Hidden || super::rules::extension(&m.content_type) != ext {
        return Err(AppError::not_found());
    }
    // Named by content: the bytes behind a name never change.
    let cache = if seen == model::Seen::Public {
        "public, max-age=31536000, immutable"
    } else {
        "private, max-age=31536000, immutable"
    };
    let mut res = Body::from(m.data).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&m.content_type).map_err(|e| AppError::internal(&e))?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(res)
}

/// Decodes and re-encodes an upload off the async runtime.
pub async fn process(bytes: Result<Vec<u8>, Error>, purpose: Purpose) -> Result<Processed, Error> {
    let bytes = bytes?;
    tokio::task::spawn_blocking(move || super::rules::process(&bytes, purpose, MAX_UPLOAD_BYTES))
        .await
        .map_err(|_| Error::Corrupt)?
}

/// A `multipart/form-data` upload from a page: the CSRF token (field `csrf`) is checked like
/// every form's, the file (field `file`) is read up to [`MAX_UPLOAD_BYTES`]; a file that is too
/// large is `Err` here, so the page can say so next to the field.
pub struct UploadForm {
    pub file: Result<Vec<u8>, Error>,
}

impl FromRequest<AppState> for UploadForm {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let expected = CsrfToken::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let mut multipart = Multipart::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| AppError::bad_request("invalid_form", "error-invalid-form"))?;
        let mut csrf = String::new();
        let mut file = Ok(Vec::new());
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    // The token may come after the file; without it nothing is answered but 403.
                    if csrf.is_empty() {
                        return Err(AppError::from_status(StatusCode::PAYLOAD_TOO_LARGE));
                    }
                    file = Err(too_large());
                    break;
                }
                Err(_) => return Err(AppError::bad_request("invalid_form", "error-invalid-form")),
            };
            match field.name() {
                Some("csrf") => {
                    csrf = field
                        .text()
                        .await
                        .map_err(|_| AppError::bad_request("invalid_form", "error-invalid-form"))?;
                }
                Some("file") => file = read_limited(field).await,
                _ => {}
            }
        }
        expected.verify(&csrf, &headers, &state.config().public_url)?;
        Ok(Self { file })
    }
}

fn too_large() -> Error {
    Error::TooLarge {
        max_mib: MAX_UPLOAD_BYTES / (1024 * 1024),
    }
}

async fn read_limited(mut field: axum::extract::multipart::Field<'_>) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut over = false;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                // Past the limit the rest is read and dropped (up to the body limit), so the
                // browser gets the answer instead of a reset connection.
                over = over || out.len() + chunk.len() > MAX_UPLOAD_BYTES;
                if over {
                    out = Vec::new();
                } else {
                    out.extend_from_slice(&chunk);
                }
            }
            Ok(None) if over => return Err(too_large()),
            Ok(None) => return Ok(out),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(_) => return Err(Error::Corrupt),
        }
    }
}

/// The raw body of an API upload (`PUT` with the image as the body), up to the limit.
pub async fn read_body(body: Body) -> Result<Vec<u8>, AppError> {
    axum::body::to_bytes(body, MAX_UPLOAD_BYTES)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| too_large().into())
}
