use std::fmt;

/// A value that could not become a domain type: which field, what was given, and why not.
///
/// The location (file and line, record id) is added by whoever reads the input; this type
/// only knows the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FieldError {
    /// The input field name, as the user wrote it (`priority`, `created_at`, ...).
    pub field: &'static str,
    /// What was wrong with it, in words a user can act on.
    pub reason: String,
}

impl FieldError {
    /// A field error with a reason.
    pub fn new(field: &'static str, reason: impl Into<String>) -> FieldError {
        FieldError { field, reason: reason.into() }
    }

    /// The field is required but was absent, null or empty.
    pub fn missing(field: &'static str) -> FieldError {
        FieldError::new(field, "missing (required)")
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field {}: {}", self.field, self.reason)
    }
}

/// Shortens user input for an error message so a huge value cannot flood the terminal.
pub(crate) fn quote(value: &str) -> String {
    const MAX: usize = 60;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head:?}... ({} chars)", value.chars().count())
    }
}
