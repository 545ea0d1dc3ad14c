//! Label, field and shard selectors, parsed and matched as kube-apiserver does for `?labelSelector=`,
//! `?fieldSelector=` and `?shardSelector=` (the last in [`shards`]).
//!
//! A parse failure is a [`SelectorError`] whose text is the message the server puts in its 400
//! `BadRequest` Status (the server passes the apimachinery parser's error through unchanged).

use crate::validation::go_quote;

pub(crate) mod fields;
pub(crate) mod labels;
pub(crate) mod shards;

/// Why a label or field selector was refused; `Display` gives the server's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SelectorError {
    /// A label requirement could not be parsed or is invalid; the text is the inner cause.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// The label selector's structure is wrong between requirements: `found 'X', expected: ...`.
    #[error("found '{found}', expected: {expected}")]
    Unexpected {
        /// The literal that was found (empty at the end of the string).
        found: String,
        /// What the parser expected instead.
        expected: &'static str,
    },
    /// A requirement of a structured (`metav1.LabelSelector`) selector is invalid; the text is the
    /// aggregated field errors, e.g. `values: Invalid value: null: for 'in', 'notin' operators, ...`.
    #[error("{0}")]
    InvalidRequirement(String),
    /// A structured selector's `matchExpressions` operator is not `In`, `NotIn`, `Exists` or
    /// `DoesNotExist`.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    UnknownOperator(String),
    /// A structured selector is not shaped like a `metav1.LabelSelector`.
    #[error("invalid label selector: {0}")]
    Malformed(String),
    /// A field-selector term has no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm {
        /// The whole selector.
        selector: String,
        /// The term that has no operator.
        term: String,
    },
    /// A field-selector value has a backslash not followed by `\`, `,` or `=` (or a trailing one).
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A field-selector value has an unescaped `,` or `=`; Go prints the character as its code point.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedChar(char),
}
