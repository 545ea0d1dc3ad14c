//! Causes: why handlers run. A watch event plus the diff-base becomes a [`Reason`] by Kopf's rules
//! (`GONE`, `FREE`, `DELETE`, `CREATE`, `RESUME`, `NOOP`, `UPDATE`, in that order of precedence).

use serde_json::Value;

use crate::structs::diff::Diff;
use crate::structs::finalizers;

/// Why a changing handler runs (Kopf's `kopf.Reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// First seen without a diff-base.
    Create,
    /// The essence changed.
    Update,
    /// Deletion requested, our finalizer present.
    Delete,
    /// First seen by this process's listing, nothing changed.
    Resume,
    /// Nothing essential changed.
    Noop,
    /// Deletion requested without our finalizer: nothing to do.
    Free,
    /// The object is gone.
    Gone,
}

impl Reason {
    /// `create`, `update`, … — the `purpose` in progress records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Resume => "resume",
            Self::Noop => "noop",
            Self::Free => "free",
            Self::Gone => "gone",
        }
    }

    /// Kopf's titles for log lines ("Creation is in progress").
    pub fn title(self) -> &'static str {
        match self {
            Self::Create => "creation",
            Self::Update => "updating",
            Self::Delete => "deletion",
            Self::Resume => "resuming",
            Self::Noop => "nothing",
            Self::Free => "freeing",
            Self::Gone => "disappearance",
        }
    }

    /// Whether handlers run for this reason.
    pub fn has_handlers(self) -> bool {
        matches!(self, Self::Create | Self::Update | Self::Delete | Self::Resume)
    }

    /// Parses a stored purpose.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "create" => Self::Create,
            "update" => Self::Update,
            "delete" => Self::Delete,
            "resume" => Self::Resume,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kopf's state machine for the changing cause.
pub(crate) fn detect_reason(
    deleted_event: bool,
    body: &Value,
    finalizer: &str,
    old: Option<&Value>,
    diff: &Diff,
    initial: bool,
) -> Reason {
    if deleted_event {
        Reason::Gone
    } else if finalizers::is_deletion_ongoing(body) && !finalizers::is_deletion_blocked(body, finalizer) {
        Reason::Free
    } else if finalizers::is_deletion_ongoing(body) {
        Reason::Delete
    } else if old.is_none() {
        Reason::Create
    } else if diff.is_empty() && initial {
        Reason::Resume
    } else if diff.is_empty() {
        Reason::Noop
    } else {
        Reason::Update
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::structs::diff::diff;

    const F: &str = "kopf.zalando.org/KopfFinalizerMarker";

    #[test]
    fn reasons_follow_kopfs_precedence() {
        let plain = json!({"metadata": {}});
        let deleting_ours = json!({"metadata": {"deletionTimestamp": "t", "finalizers": [F]}});
        let deleting_other = json!({"metadata": {"deletionTimestamp": "t", "finalizers": ["x"]}});
        let none = Diff::default();
        let some = diff(Some(&json!({"a": 1})), Some(&json!({"a": 2})));
        let old = json!({});
        assert_eq!(detect_reason(true, &plain, F, None, &none, false), Reason::Gone);
        assert_eq!(detect_reason(false, &deleting_other, F, Some(&old), &none, false), Reason::Free);
        assert_eq!(detect_reason(false, &deleting_ours, F, None, &none, false), Reason::Delete);
        assert_eq!(detect_reason(false, &plain, F, None, &none, true), Reason::Create);
        assert_eq!(detect_reason(false, &plain, F, Some(&old), &none, true), Reason::Resume);
        assert_eq!(detect_reason(false, &plain, F, Some(&old), &none, false), Reason::Noop);
        assert_eq!(detect_reason(false, &plain, F, Some(&old), &some, true), Reason::Update);
    }
}
