//! Uploaded images: group avatars and banners, user avatars.
//!
//! Invariants:
//! - an upload's type is decided by its bytes, never by its name or `Content-Type`; only PNG,
//!   JPEG, GIF and WebP are decoded, with limits on bytes, pixels and decoder memory;
//! - what is stored is always re-encoded from the decoded pixels (EXIF orientation applied
//!   first), so no metadata of the original (location, camera, comments) survives;
//! - the bytes live in the database (`media`), named by their SHA-256: every `agora` process on a
//!   shared database serves them and a database backup holds them;
//! - an image used only by internal groups is shown only to their members.

pub mod model;
pub mod routes;
pub mod rules;

pub use model::{Images, Media, MediaRef};
pub use rules::{Processed, Purpose};

/// Why an upload was refused; each is a sentence the uploader can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the file is larger than {max_mib} MiB; upload a smaller image")]
    TooLarge { max_mib: usize },
    #[error("the file is not a PNG, JPEG, GIF or WebP image")]
    Unsupported,
    #[error("the image could not be read; it may be damaged or truncated")]
    Corrupt,
    #[error("the image is larger than {max} pixels on a side; upload a smaller image")]
    TooManyPixels { max: u32 },
    #[error("no file was uploaded; choose an image first")]
    Missing,
    #[error("{0}")]
    Db(#[from] crate::db::Error),
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(crate::db::Error::Query(e))
    }
}

impl Error {
    pub fn message_key(&self) -> (&'static str, Vec<(&'static str, String)>) {
        match self {
            Self::TooLarge { max_mib } => ("error-image-too-large", vec![("max", max_mib.to_string())]),
            Self::Unsupported => ("error-image-type", vec![]),
            Self::Corrupt => ("error-image-corrupt", vec![]),
            Self::TooManyPixels { max } => ("error-image-pixels", vec![("max", max.to_string())]),
            Self::Missing => ("error-image-missing", vec![]),
            Self::Db(_) => ("error-internal", vec![]),
        }
    }

    /// The sentence in the page's language, for a form that shows it next to the file field.
    pub fn localized(&self, lang: crate::web::i18n::Lang) -> String {
        let (key, args) = self.message_key();
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::web::i18n::translate(lang, key, &args)
    }

    fn status_code(&self) -> (axum::http::StatusCode, &'static str) {
        use axum::http::StatusCode;
        match self {
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "image_too_large"),
            Self::Unsupported => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_image"),
            Self::Corrupt => (StatusCode::UNPROCESSABLE_ENTITY, "corrupt_image"),
            Self::TooManyPixels { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "image_too_many_pixels"),
            Self::Missing => (StatusCode::UNPROCESSABLE_ENTITY, "image_missing"),
            Self::Db(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<Error> for crate::error::AppError {
    fn from(e: Error) -> Self {
        if let Error::Db(_) = e {
            return Self::internal(&e);
        }
        let (status, code) = e.status_code();
        let (key, args) = e.message_key();
        let mut out = Self::with_args(status, code, key, args);
        out.field = Some("file");
        out
    }
}
