//! Form state for re-rendering a form with the user's input and errors tied to their fields.

use super::i18n::{self, Lang};

#[derive(Debug, Clone, Default)]
pub struct FormState {
    values: Vec<(&'static str, String)>,
    errors: Vec<(&'static str, String)>,
    /// An error about the form as a whole (shown in an alert above it).
    pub general: Option<String>,
}

impl FormState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_value(mut self, field: &'static str, value: impl Into<String>) -> Self {
        self.values.push((field, value.into()));
        self
    }

    /// Adds a translated error for `field`.
    pub fn error(&mut self, lang: Lang, field: &'static str, key: &str, args: &[(&str, &str)]) {
        self.errors.push((field, i18n::translate(lang, key, args)));
    }

    pub fn push_error(&mut self, field: &'static str, message: String) {
        self.errors.push((field, message));
    }

    pub fn value(&self, field: &str) -> &str {
        self.values
            .iter()
            .find(|(f, _)| *f == field)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn has_error(&self, field: &str) -> bool {
        self.error_for(field).is_some()
    }

    /// Field errors in the order they were found: the error summary lists them.
    pub fn field_errors(&self) -> &[(&'static str, String)] {
        &self.errors
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.general.is_some()
    }
}
