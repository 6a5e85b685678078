use std::time::Duration;

/// The classes of provider failure the controller acts on: each picks a condition reason, an
/// event, a metric label and a retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The secret does not exist, where ESO reports `NoSecretErr` (for Secrets Manager that
    /// includes a staging label no version carries). Under `deletionPolicy: Delete` or `Merge`
    /// the controller drops the keys it would have filled instead of failing, so a provider uses
    /// it only when the secret is really gone, never for a bad selector or a refusal.
    NotFound,
    /// The credentials were refused or lack permission.
    AccessDenied,
    /// The provider asked us to slow down.
    Throttled,
    /// The provider could not be reached or failed on its side; retry with backoff.
    Unavailable,
    /// The request or configuration is wrong; retrying will not help until it changes.
    Invalid,
}

impl ErrorClass {
    /// A stable, lower-case name for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AccessDenied => "access_denied",
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::Invalid => "invalid",
        }
    }

    /// Whether an unchanged request may succeed later.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable)
    }
}

/// A classified provider error. The message must never contain a secret value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub class: ErrorClass,
    pub message: String,
    /// A delay the provider asked for, if it said one.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::NotFound, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Invalid, message)
    }
}
