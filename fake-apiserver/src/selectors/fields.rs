//! Field selectors: the `?fieldSelector=` syntax of kube-apiserver.
//!
//! Following apimachinery's `pkg/fields/selector.go`: terms are separated by unescaped commas and AND-ed;
//! each term is `field=value`, `field==value` or `field!=value`, split at the first operator (the field
//! has no escaping); in the value, `\\`, `\,` and `\=` stand for `\`, `,` and `=`, while any other
//! backslash and any bare `,` or `=` is an error. Empty terms are skipped and a term with an empty field
//! and an empty value (`=`) selects everything. Nothing is trimmed: `a = b` compares field `"a "` with
//! value `" b"`. Which fields exist is the caller's business (the server answers
//! `field label not supported: ...` for others): [`FieldSelector::fields`] lists them, and
//! [`FieldSelector::matches`] asks a lookup function, a missing field comparing as "".

use std::fmt;

use serde_json::Value;

use super::SelectorError;

/// One term: `field=value` or, if `negated`, `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed field selector: the AND of its terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct FieldSelector {
    terms: Vec<Term>,
}

impl FieldSelector {
    /// Parses the `?fieldSelector=` syntax; the error's text is the server's 400 message.
    pub(crate) fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, negated, raw_value)) = split_term(part) else {
                return Err(SelectorError::FieldTerm { selector: s.to_owned(), term: part.to_owned() });
            };
            let value = unescape_value(raw_value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            terms.push(Term { field: field.to_owned(), value, negated });
        }
        Ok(Self { terms })
    }

    /// The field names the terms refer to, in the selector's (sorted) order, repeats included.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|term| term.field.as_str())
    }

    /// Whether every term holds, `get` giving a field's value (`None`, a missing field, compares as "").
    pub(crate) fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|term| {
            let value = get(&term.field).unwrap_or_default();
            (value == term.value) != term.negated
        })
    }

    /// Whether the selector restricts nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value a `field=value` term requires, as apimachinery's `RequiresExactMatch`.
    pub(crate) fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms.iter().find(|t| t.field == field && !t.negated).map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical text, as apimachinery's `Selector.String`: `field=value` / `field!=value` terms
    /// (values escaped) joined with ','.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if term.negated { "!=" } else { "=" };
            write!(f, "{}{op}{}", term.field, escape_value(&term.value))?;
        }
        Ok(())
    }
}

/// Escapes a literal value for use in a field selector (`\` → `\\`, `,` → `\,`, `=` → `\=`), as
/// apimachinery's `EscapeValue`.
pub(crate) fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits at commas not preceded by an escaping backslash; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator, trying `!=`, then `==`, then `=` at each position; answers
/// the field, whether the operator is `!=`, and the raw (still escaped) value.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], negated, value));
            }
        }
    }
    None
}

/// Undoes [`escape_value`], refusing unknown escapes and bare `,` / `=` as apimachinery's
/// `UnescapeValue` does.
fn unescape_value(raw: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(raw.len());
    let mut in_slash = false;
    for c in raw.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::InvalidEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::UnescapedChar(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidEscape("\\".to_owned()));
    }
    Ok(out)
}

/// Reads the dotted `path` (`spec.nodeName`, `metadata.name`) from `obj` and renders it as the server's
/// field sets do: strings as they are, booleans `true`/`false`, numbers in decimal (an integral float
/// without a fraction). `None` if a step is missing, or the value is `null`, an object or an array.
pub(crate) fn json_field(obj: &Value, path: &str) -> Option<String> {
    let mut current = obj;
    for step in path.split('.') {
        current = current.as_object()?.get(step)?;
    }
    match current {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            // Exactly representable integral floats print without a fraction, as Go's integer fields do.
            (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{f:.0}"),
            _ => n.to_string(),
        }),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::{FieldSelector, escape_value, json_field};

    fn sel(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap()
    }

    fn err(s: &str) -> String {
        FieldSelector::parse(s).unwrap_err().to_string()
    }

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |field| map.get(field).cloned()
    }

    #[test]
    fn the_empty_selector_is_empty_and_matches_everything() {
        for s in ["", ",", ",,", "="] {
            let selector = sel(s);
            assert!(selector.is_empty(), "{s:?}");
            assert!(selector.matches(lookup(&[])));
            assert_eq!(selector.fields().count(), 0);
        }
    }

    #[test]
    fn equals_and_double_equals_require_the_value() {
        for s in ["metadata.name=foo", "metadata.name==foo"] {
            let selector = sel(s);
            assert!(!selector.is_empty());
            assert!(selector.matches(lookup(&[("metadata.name", "foo")])));
            assert!(!selector.matches(lookup(&[("metadata.name", "bar")])));
            assert!(!selector.matches(lookup(&[])));
        }
    }

    #[test]
    fn not_equals_matches_other_values_and_a_missing_field() {
        let selector = sel("status.phase!=Running");
        assert!(!selector.matches(lookup(&[("status.phase", "Running")])));
        assert!(selector.matches(lookup(&[("status.phase", "Pending")])));
        assert!(selector.matches(lookup(&[])));
    }

    #[test]
    fn a_missing_field_compares_as_the_empty_string() {
        assert!(sel("spec.nodeName=").matches(lookup(&[])));
        assert!(!sel("spec.nodeName!=").matches(lookup(&[])));
        assert!(sel("spec.nodeName!=").matches(lookup(&[("spec.nodeName", "node-1")])));
    }

    #[test]
    fn commas_and_terms_and_empty_terms_are_skipped() {
        let selector = sel(",b=2,,a=1,");
        assert!(selector.matches(lookup(&[("a", "1"), ("b", "2")])));
        assert!(!selector.matches(lookup(&[("a", "1"), ("b", "3")])));
        assert_eq!(selector.fields().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn the_first_operator_splits_the_term_and_nothing_is_trimmed() {
        let selector = sel("a = b");
        assert_eq!(selector.fields().collect::<Vec<_>>(), ["a "]);
        assert!(selector.matches(lookup(&[("a ", " b")])));
        assert!(sel("a=!b").matches(lookup(&[("a", "!b")])));
        assert!(sel("a!=!b").matches(lookup(&[("a", "b")])));
        assert!(sel("=x").matches(lookup(&[("", "x")])));
    }

    #[test]
    fn escaped_backslash_comma_and_equals_are_literal_value_characters() {
        let selector = sel(r"a=x\,y\=z\\w,b=c");
        assert!(selector.matches(lookup(&[("a", r"x,y=z\w"), ("b", "c")])));
        assert_eq!(selector.fields().collect::<Vec<_>>(), ["a", "b"]);
        assert!(sel(r"a=\\,b=c").matches(lookup(&[("a", r"\"), ("b", "c")])));
    }

    #[test]
    fn a_term_without_an_operator_is_refused_with_the_whole_selector() {
        assert_eq!(err("abc"), "invalid selector: 'abc'; can't understand 'abc'");
        assert_eq!(err("a=b,c"), "invalid selector: 'a=b,c'; can't understand 'c'");
        assert_eq!(err("a!b"), "invalid selector: 'a!b'; can't understand 'a!b'");
    }

    #[test]
    fn an_unknown_or_trailing_escape_is_refused() {
        assert_eq!(err(r"a=b\x"), r"invalid field selector: invalid escape sequence: \x");
        assert_eq!(err(r"a=b\"), r"invalid field selector: invalid escape sequence: \");
    }

    #[test]
    fn an_unescaped_equals_in_a_value_is_refused_with_its_code_point() {
        assert_eq!(err("a=b=c"), "invalid field selector: unescaped character in value: 61");
        assert_eq!(err("a===b"), "invalid field selector: unescaped character in value: 61");
    }

    #[test]
    fn display_gives_the_canonical_escaped_form() {
        assert_eq!(sel(r"b==x\,y,a!=\\").to_string(), r"a!=\\,b=x\,y");
        assert_eq!(escape_value(r"a\b,c=d"), r"a\\b\,c\=d");
    }

    #[test]
    fn json_field_reads_dotted_paths_and_renders_scalars_as_field_sets_do() {
        let pod = json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"nodeName": "node-1", "hostNetwork": true, "priority": -3,
                     "big": 18446744073709551615u64,
                     "ratio": 1.5, "whole": 2.0, "containers": [], "affinity": {}, "nothing": null},
        });
        assert_eq!(json_field(&pod, "metadata.name").as_deref(), Some("web"));
        assert_eq!(json_field(&pod, "spec.nodeName").as_deref(), Some("node-1"));
        assert_eq!(json_field(&pod, "spec.hostNetwork").as_deref(), Some("true"));
        assert_eq!(json_field(&pod, "spec.priority").as_deref(), Some("-3"));
        assert_eq!(json_field(&pod, "spec.big").as_deref(), Some("18446744073709551615"));
        assert_eq!(json_field(&pod, "spec.ratio").as_deref(), Some("1.5"));
        assert_eq!(json_field(&pod, "spec.whole").as_deref(), Some("2"));
        for missing in
            ["spec.containers", "spec.affinity", "spec.nothing", "spec.absent", "metadata.name.x", ""]
        {
            assert_eq!(json_field(&pod, missing), None, "{missing}");
        }
    }

    #[test]
    fn json_field_works_as_the_lookup_of_matches() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {"nodeName": "node-1"}});
        assert!(sel("metadata.name=web,spec.nodeName=node-1").matches(|f| json_field(&pod, f)));
        assert!(!sel("metadata.name=web,spec.nodeName=").matches(|f| json_field(&pod, f)));
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC*") {
            let _ = FieldSelector::parse(&s);
        }

        #[test]
        fn escaped_values_round_trip(value in "\\PC*") {
            let selector = sel(&format!("f={}", escape_value(&value)));
            prop_assert!(selector.matches(|_| Some(value.clone())));
            prop_assert_eq!(FieldSelector::parse(&selector.to_string()), Ok(selector));
        }
    }
}
