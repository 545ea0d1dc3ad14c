//! Handler ids: Kopf's naming (`fn`, `fn/spec.field`, `parent/child`).

/// The id of a handler, as stored in progress annotations and under `status.<id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct HandlerId(String);

impl HandlerId {
    /// An id from its text.
    pub(crate) fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Kopf's field suffix: `id/spec.field`.
    #[must_use]
    pub(crate) fn with_field(&self, field: &[String]) -> Self {
        Self(format!("{}/{}", self.0, field.join(".")))
    }
}

impl std::fmt::Display for HandlerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for HandlerId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}
