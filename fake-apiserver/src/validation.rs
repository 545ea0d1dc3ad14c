//! Object-metadata validation, reproducing kube-apiserver's 422 `Invalid` answers.
//!
//! The rules and the wording follow apimachinery: `pkg/util/validation` (DNS names, whose length errors
//! speak of "characters"), `pkg/api/validate/content` (label keys and values, whose length errors speak
//! of "bytes"), `pkg/api/validation` (`ValidateObjectMetaAccessor`, annotations, owner references,
//! finalizers) and `pkg/apis/meta/v1/validation` (labels). Every failure becomes a [`Cause`] carrying the
//! `StatusCause` triple the server sends (`reason`, `field`, `message`), and [`invalid_message`] builds
//! the Status `message` the way `errors.NewInvalid` does.
//!
//! The module also holds [`go_quote`] and [`go_json`], which render bad values the way Go's `%q` and
//! `encoding/json` do, so that messages match the server's byte for byte.

use serde_json::{Map, Value};

/// Reason of a cause whose value is malformed (`field.ErrorTypeInvalid`).
pub(crate) const FIELD_VALUE_INVALID: &str = "FieldValueInvalid";
/// Reason of a cause whose value is missing (`field.ErrorTypeRequired`).
pub(crate) const FIELD_VALUE_REQUIRED: &str = "FieldValueRequired";
/// Reason of a cause whose value is too long (`field.ErrorTypeTooLong`).
pub(crate) const FIELD_VALUE_TOO_LONG: &str = "FieldValueTooLong";
/// Reason of a cause whose value is not allowed here (`field.ErrorTypeForbidden`).
pub(crate) const FIELD_VALUE_FORBIDDEN: &str = "FieldValueForbidden";
/// Reason of a cause whose value has the wrong JSON type (`field.ErrorTypeTypeInvalid`).
pub(crate) const FIELD_VALUE_TYPE_INVALID: &str = "FieldValueTypeInvalid";

/// Total size (keys plus values, in bytes) the annotations of one object may have: 256 KiB.
pub(crate) const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Longest DNS-1123 label (and DNS-1035 label).
const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain.
const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Longest name part of a qualified name, and longest label value.
const LABEL_MAX_LENGTH: usize = 63;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric \
     characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or \
     '-', start with an alphabetic character, and end with an alphanumeric character";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start \
     and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric \
     characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// The finalizer that orphans dependents (`metav1.FinalizerOrphanDependents`).
const FINALIZER_ORPHAN: &str = "orphan";
/// The finalizer of foreground deletion (`metav1.FinalizerDeleteDependents`).
const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// One field-level failure, as a `StatusCause` of a 422 `Invalid` Status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cause {
    /// The cause type: `"FieldValueInvalid"`, `"FieldValueRequired"`, `"FieldValueTooLong"`,
    /// `"FieldValueForbidden"`, `"FieldValueTypeInvalid"`, ...
    pub(crate) reason: &'static str,
    /// The field path as the server writes it, e.g. `metadata.name` or `metadata.ownerReferences[0].uid`.
    pub(crate) field: String,
    /// The message without the field, as `field.Error.ErrorBody()` renders it, e.g.
    /// `Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of ...`.
    pub(crate) message: String,
}

impl Cause {
    /// A `FieldValueInvalid` cause; `bad_value` is already rendered (see [`go_quote`], [`go_json`]).
    pub(crate) fn invalid(field: impl Into<String>, bad_value: &str, detail: &str) -> Self {
        Self {
            reason: FIELD_VALUE_INVALID,
            field: field.into(),
            message: with_detail(format!("Invalid value: {bad_value}"), detail),
        }
    }

    /// A `FieldValueRequired` cause; an empty `detail` gives the bare `Required value`.
    pub(crate) fn required(field: impl Into<String>, detail: &str) -> Self {
        Self {
            reason: FIELD_VALUE_REQUIRED,
            field: field.into(),
            message: with_detail("Required value".into(), detail),
        }
    }

    /// A `FieldValueForbidden` cause.
    pub(crate) fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self {
            reason: FIELD_VALUE_FORBIDDEN,
            field: field.into(),
            message: with_detail("Forbidden".into(), detail),
        }
    }

    /// A `FieldValueTooLong` cause saying the value may not be more than `max_bytes` bytes.
    pub(crate) fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        Self {
            reason: FIELD_VALUE_TOO_LONG,
            field: field.into(),
            message: format!("Too long: may not be more than {max_bytes} {unit}"),
        }
    }

    /// A `FieldValueTypeInvalid` cause: the JSON value `bad` does not have the type the field needs.
    pub(crate) fn type_invalid(field: impl Into<String>, bad: &Value, detail: &str) -> Self {
        Self {
            reason: FIELD_VALUE_TYPE_INVALID,
            field: field.into(),
            message: with_detail(format!("Invalid value: {}", go_json(bad)), detail),
        }
    }
}

/// Appends `": detail"` to `body` unless the detail is empty, as `ErrorBody` does.
fn with_detail(body: String, detail: &str) -> String {
    if detail.is_empty() { body } else { format!("{body}: {detail}") }
}

/// How an object's `metadata.name` must look (the server's `ValidateNameFunc` of the resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// A lowercase RFC 1123 subdomain (`NameIsDNSSubdomain`): most built-in kinds, and custom resources.
    Dns1123Subdomain,
    /// A lowercase RFC 1123 label (`NameIsDNSLabel`): namespaces, for instance.
    Dns1123Label,
    /// A DNS-1035 label (`NameIsDNS1035Label`): services.
    Dns1035Label,
    /// Anything usable as a URL path segment: not `.` or `..`, no `/` or `%` (`ValidatePathSegmentName`),
    /// as RBAC roles and bindings use.
    PathSegment,
}

impl NameRule {
    /// The failures of `name` under this rule; `prefix` is set for a `generateName`, whose trailing
    /// dash is masked first (as `maskTrailingDash` does) since random characters will follow it.
    pub(crate) fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let value = if prefix { mask_trailing_dash(name.as_bytes()) } else { name.as_bytes().to_vec() };
        match self {
            Self::Dns1123Subdomain => subdomain_errors(&value, "characters"),
            Self::Dns1123Label => dns1123_label_errors(&value),
            Self::Dns1035Label => dns1035_label_errors(&value),
            Self::PathSegment if prefix => path_segment_prefix(name),
            Self::PathSegment => path_segment_name(name),
        }
    }
}

/// The server's `maskTrailingDash`: if the value is longer than one byte and ends with '-', drop its last
/// *two* bytes and append an 'a' (a quirk of the server, kept for fidelity). Works on bytes so that a
/// multi-byte character before the dash cannot make the slicing panic; such a value fails anyway.
fn mask_trailing_dash(value: &[u8]) -> Vec<u8> {
    match value {
        [head @ .., _, b'-'] => {
            let mut masked = head.to_vec();
            masked.push(b'a');
            masked
        }
        _ => value.to_vec(),
    }
}

/// The failures of `value` as a lowercase RFC 1123 subdomain, worded as apimachinery's
/// `IsDNS1123Subdomain`: at most 253 characters, dot-separated RFC 1123 labels.
pub(crate) fn dns1123_subdomain(value: &str) -> Vec<String> {
    subdomain_errors(value.as_bytes(), "characters")
}

/// The failures of `value` as a lowercase RFC 1123 label, worded as apimachinery's `IsDNS1123Label`
/// (a valid subdomain that is not a label gets "must not contain dots").
pub(crate) fn dns1123_label(value: &str) -> Vec<String> {
    dns1123_label_errors(value.as_bytes())
}

/// The failures of `value` as a DNS-1035 label, worded as apimachinery's `IsDNS1035Label`.
pub(crate) fn dns1035_label(value: &str) -> Vec<String> {
    dns1035_label_errors(value.as_bytes())
}

/// The failures of `value` as a qualified name, `[prefix/]name`, which label keys, annotation keys and
/// finalizers must be; worded as apimachinery's `content.IsLabelKey`.
pub(crate) fn qualified_name(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let mut errs = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    subdomain_errors(prefix.as_bytes(), "bytes")
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' \
                 (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > LABEL_MAX_LENGTH {
        errs.push(format!("name part {}", max_len_error(LABEL_MAX_LENGTH, "bytes")));
    }
    if !is_label_key_name(name.as_bytes()) {
        errs.push(format!(
            "name part {}",
            regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    errs
}

/// The failures of `value` as a label value (empty, or up to 63 bytes of alphanumerics, '-', '_', '.'
/// starting and ending with an alphanumeric); worded as apimachinery's `content.IsLabelValue`.
pub(crate) fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_MAX_LENGTH {
        errs.push(max_len_error(LABEL_MAX_LENGTH, "bytes"));
    }
    if !value.is_empty() && !is_label_key_name(value.as_bytes()) {
        errs.push(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    errs
}

/// The name failures of a path-segment name (`content.IsPathSegmentName`).
fn path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    path_segment_prefix(name)
}

/// The failures of a path-segment prefix (`content.IsPathSegmentPrefix`): no '/' and no '%'.
fn path_segment_prefix(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(**bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// `MaxLenError`: "must be no more than N characters" (util/validation) or "... N bytes" (content).
fn max_len_error(max: usize, unit: &str) -> String {
    format!("must be no more than {max} {unit}")
}

/// `RegexError`: the message, then the examples and the regex, in apimachinery's exact (and slightly
/// odd: `'a',  or 'b', `) punctuation.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

/// Whether `v` matches `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`.
fn is_dns1123_label(v: &[u8]) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (v.first(), v.last()) {
        (Some(first), Some(last)) => alnum(first) && alnum(last) && v.iter().all(|b| alnum(b) || *b == b'-'),
        _ => false,
    }
}

/// Whether `v` matches the RFC 1123 subdomain regex: dot-separated RFC 1123 labels.
fn is_dns1123_subdomain(v: &[u8]) -> bool {
    v.split(|b| *b == b'.').all(is_dns1123_label)
}

/// Whether `v` matches `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$` (a label key's name part).
fn is_label_key_name(v: &[u8]) -> bool {
    match (v.first(), v.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && v.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `IsDNS1123Subdomain` over bytes, with the length unit of the calling package.
fn subdomain_errors(v: &[u8], unit: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH, unit));
    }
    if !is_dns1123_subdomain(v) {
        errs.push(regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errs
}

/// `IsDNS1123Label` over bytes.
fn dns1123_label_errors(v: &[u8]) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH, "characters"));
    }
    if !is_dns1123_label(v) {
        if is_dns1123_subdomain(v) {
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(DNS1123_LABEL_ERR, DNS1123_LABEL_FMT, &["my-name", "123-abc"]));
        }
    }
    errs
}

/// `IsDNS1035Label` over bytes: like an RFC 1123 label, but starting with a letter.
fn dns1035_label_errors(v: &[u8]) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH, "characters"));
    }
    if !(is_dns1123_label(v) && v.first().is_some_and(u8::is_ascii_lowercase)) {
        errs.push(regex_error(DNS1035_LABEL_ERR, DNS1035_LABEL_FMT, &["my-name", "abc-123"]));
    }
    errs
}

/// Renders `s` as Go's `%q` (`strconv.Quote`) does: double quotes, the C escapes `\a \b \f \n \r \t \v`,
/// `\"` and `\\`, `\xHH` for other ASCII controls, `\uHHHH`/`\UHHHHHHHH` for other non-printable
/// characters, printable Unicode as is. Go's `unicode.IsPrint` is approximated: controls, separators
/// other than the space, format characters, private-use and non-characters count as non-printable;
/// unassigned code points (which Go also escapes) are kept.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if is_go_printable(c) => out.push(c),
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` without Unicode tables (see [`go_quote`]).
fn is_go_printable(c: char) -> bool {
    let u = u32::from(c);
    let format_char = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD
        | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F);
    let private_use = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let non_character = matches!(u, 0xFDD0..=0xFDEF) || (u & 0xFFFE) == 0xFFFE;
    !(c.is_control() || (c.is_whitespace() && c != ' ') || format_char || private_use || non_character)
}

/// Renders a JSON value as Go's `encoding/json` would marshal it: compact, object keys sorted (Go
/// marshals maps in key order), and strings escaped the Go way ([`go_json_string`]).
pub(crate) fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&go_json_string(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&go_json_string(key));
                out.push(':');
                if let Some(item) = map.get(key) {
                    write_go_json(item, out);
                }
            }
            out.push('}');
        }
    }
}

/// A JSON string literal as Go's `encoding/json` writes it: `\"`, `\\`, `\b \f \n \r \t`, `\u00XX` for
/// other controls, and the HTML-safe escapes `\u003c \u003e \u0026` plus `\u2028 \u2029`.
pub(crate) fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Validates an object's `metadata` on creation, as `ValidateObjectMetaAccessor` does, returning the
/// causes in the server's order: `generateName`, `name`, `namespace`, `generation`, `labels`,
/// `annotations`, `ownerReferences`, `finalizers`. Label and annotation keys are visited in sorted order
/// (the server's order is Go's random map order).
///
/// - A non-empty `generateName` must be a valid prefix under `name_rule`; `name` must satisfy it. An
///   empty `name` is "Required" only if `generateName` is empty too: the server validates after it has
///   generated the name, so call this after generating, and the generated name gets checked as well.
/// - `namespaced`: the object must carry a namespace (an RFC 1123 label), else "Required"; a
///   cluster-scoped object may carry none ("Forbidden: not allowed on this type").
/// - Labels: keys are qualified names, values label values; annotations: keys (lower-cased) are
///   qualified names and the total size is at most 256 KiB; finalizers are qualified names, and
///   `orphan` and `foregroundDeletion` exclude each other (the server only *warns* about finalizers
///   without a '/', so they pass); owner references need `apiVersion`, `kind`, `name` and `uid`, may
///   not point to a core `Event`, and at most one may have `controller: true`.
///
/// A field of the wrong JSON type (say a number where a string belongs) gets a `FieldValueTypeInvalid`
/// cause; the real server refuses such a body earlier, with a 400. `null` counts as the zero value.
pub(crate) fn validate_object_meta(meta: &Value, name_rule: NameRule, namespaced: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = Map::new();
    let meta = match meta {
        Value::Object(map) => map,
        Value::Null => &empty,
        other => {
            causes.push(Cause::type_invalid("metadata", other, "must be an object"));
            return causes;
        }
    };
    let mut r = Reader { causes: &mut causes };

    let generate_name = r.string(meta.get("generateName"), "metadata.generateName");
    let name = r.string(meta.get("name"), "metadata.name");
    let namespace = r.string(meta.get("namespace"), "metadata.namespace");
    let generation = r.integer(meta.get("generation"), "metadata.generation");
    let labels = r.string_map(meta.get("labels"), "metadata.labels");
    let annotations = r.string_map(meta.get("annotations"), "metadata.annotations");
    let owner_refs = r.array(meta.get("ownerReferences"), "metadata.ownerReferences");
    let finalizers = r.array(meta.get("finalizers"), "metadata.finalizers");

    if !generate_name.is_empty() {
        for msg in name_rule.check(&generate_name, true) {
            causes.push(Cause::invalid("metadata.generateName", &go_quote(&generate_name), &msg));
        }
    }
    if name.is_empty() {
        if generate_name.is_empty() {
            causes.push(Cause::required("metadata.name", "name or generateName is required"));
        }
    } else {
        for msg in name_rule.check(&name, false) {
            causes.push(Cause::invalid("metadata.name", &go_quote(&name), &msg));
        }
    }

    if namespaced {
        if namespace.is_empty() {
            causes.push(Cause::required("metadata.namespace", ""));
        } else {
            for msg in dns1123_label(&namespace) {
                causes.push(Cause::invalid("metadata.namespace", &go_quote(&namespace), &msg));
            }
        }
    } else if !namespace.is_empty() {
        causes.push(Cause::forbidden("metadata.namespace", "not allowed on this type"));
    }

    if generation < 0 {
        causes.push(Cause::invalid(
            "metadata.generation",
            &generation.to_string(),
            "must be greater than or equal to 0",
        ));
    }

    for (key, value) in &labels {
        for msg in qualified_name(key) {
            causes.push(Cause::invalid("metadata.labels", &go_quote(key), &msg));
        }
        for msg in label_value(value) {
            causes.push(Cause::invalid("metadata.labels", &go_quote(value), &msg));
        }
    }

    let mut annotation_size = 0usize;
    for (key, value) in &annotations {
        for msg in qualified_name(&key.to_lowercase()) {
            causes.push(Cause::invalid("metadata.annotations", &go_quote(key), &msg));
        }
        annotation_size = annotation_size.saturating_add(key.len()).saturating_add(value.len());
    }
    if annotation_size > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push(Cause::too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE_LIMIT));
    }

    validate_owner_references(owner_refs, &mut causes);
    validate_finalizers(finalizers, &mut causes);
    causes
}

/// Reads typed metadata fields, recording a `FieldValueTypeInvalid` cause for each wrongly-typed one
/// and answering the zero value instead (as Go does for `null`).
struct Reader<'a> {
    causes: &'a mut Vec<Cause>,
}

impl Reader<'_> {
    fn string(&mut self, v: Option<&Value>, field: &str) -> String {
        match v {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                self.causes.push(Cause::type_invalid(field, other, "must be a string"));
                String::new()
            }
        }
    }

    fn integer(&mut self, v: Option<&Value>, field: &str) -> i64 {
        match v {
            None | Some(Value::Null) => 0,
            Some(other) => {
                if let Some(i) = other.as_i64() {
                    return i;
                }
                self.causes.push(Cause::type_invalid(field, other, "must be an integer"));
                0
            }
        }
    }

    fn string_map(&mut self, v: Option<&Value>, field: &str) -> Vec<(String, String)> {
        let map = match v {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                self.causes.push(Cause::type_invalid(field, other, "must be an object"));
                return Vec::new();
            }
        };
        // The field path is only built for a value that is not a string (the error path).
        let mut entries: Vec<(String, String)> = Vec::with_capacity(map.len());
        for (k, item) in map {
            let value = match item {
                Value::String(s) => s.clone(),
                other => self.string(Some(other), &format!("{field}[{k}]")),
            };
            entries.push((k.clone(), value));
        }
        entries.sort();
        entries
    }

    fn array<'v>(&mut self, v: Option<&'v Value>, field: &str) -> &'v [Value] {
        match v {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.causes.push(Cause::type_invalid(field, other, "must be an array"));
                &[]
            }
        }
    }
}

/// One owner reference, read from JSON with Go's zero values for missing fields.
struct OwnerRef {
    api_version: String,
    kind: String,
    name: String,
    uid: String,
    controller: Option<bool>,
    block_owner_deletion: Option<bool>,
}

impl OwnerRef {
    /// Renders the reference as Go marshals a `metav1.OwnerReference` (struct field order, `omitempty`
    /// pointers left out when unset).
    fn go_json(&self) -> String {
        let mut out = format!(
            "{{\"apiVersion\":{},\"kind\":{},\"name\":{},\"uid\":{}",
            go_json_string(&self.api_version),
            go_json_string(&self.kind),
            go_json_string(&self.name),
            go_json_string(&self.uid)
        );
        if let Some(controller) = self.controller {
            out.push_str(&format!(",\"controller\":{controller}"));
        }
        if let Some(block) = self.block_owner_deletion {
            out.push_str(&format!(",\"blockOwnerDeletion\":{block}"));
        }
        out.push('}');
        out
    }
}

/// `ValidateOwnerReferences` over the JSON array `refs`.
fn validate_owner_references(refs: &[Value], causes: &mut Vec<Cause>) {
    let mut parsed = Vec::with_capacity(refs.len());
    for (idx, item) in refs.iter().enumerate() {
        let path = format!("metadata.ownerReferences[{idx}]");
        let empty = Map::new();
        let map = match item {
            Value::Object(map) => map,
            Value::Null => &empty,
            other => {
                causes.push(Cause::type_invalid(path, other, "must be an object"));
                continue;
            }
        };
        let mut r = Reader { causes: &mut *causes };
        let flag = |key: &str, r: &mut Reader<'_>| match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                r.causes.push(Cause::type_invalid(format!("{path}.{key}"), other, "must be a boolean"));
                None
            }
        };
        let controller = flag("controller", &mut r);
        let block_owner_deletion = flag("blockOwnerDeletion", &mut r);
        let owner = OwnerRef {
            api_version: r.string(map.get("apiVersion"), &format!("{path}.apiVersion")),
            kind: r.string(map.get("kind"), &format!("{path}.kind")),
            name: r.string(map.get("name"), &format!("{path}.name")),
            uid: r.string(map.get("uid"), &format!("{path}.uid")),
            controller,
            block_owner_deletion,
        };
        validate_owner_reference(&owner, &path, causes);
        parsed.push(owner);
    }

    let mut first_controller: Option<String> = None;
    for owner in &parsed {
        if owner.controller != Some(true) {
            continue;
        }
        let current = format!("{}/{}", owner.kind, owner.name);
        match &first_controller {
            Some(first) => {
                let list =
                    format!("[{}]", parsed.iter().map(OwnerRef::go_json).collect::<Vec<_>>().join(","));
                causes.push(Cause::invalid(
                    "metadata.ownerReferences",
                    &list,
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for \
                         {first} and {current}"
                    ),
                ));
            }
            None => first_controller = Some(current),
        }
    }
}

/// `validateOwnerReference`: required fields, a parseable `apiVersion`, and no core `Event` owner.
fn validate_owner_reference(owner: &OwnerRef, path: &str, causes: &mut Vec<Cause>) {
    // schema.ParseGroupVersion: "" and "/" give the empty group-version; more than one '/' is an error.
    let av = owner.api_version.as_str();
    let parsed = if av.is_empty() || av == "/" {
        Some(("", ""))
    } else {
        match av.matches('/').count() {
            0 => Some(("", av)),
            1 => av.split_once('/'),
            _ => None,
        }
    };
    let (group, version) = parsed.unwrap_or(("", ""));
    if owner.api_version.is_empty() {
        causes.push(Cause::required(format!("{path}.apiVersion"), "must not be empty"));
    } else if parsed.is_none() || version.is_empty() {
        causes.push(Cause::invalid(
            format!("{path}.apiVersion"),
            &go_quote(&owner.api_version),
            "must be <group>/<version> or <version>",
        ));
    }
    for (field, value) in [("kind", &owner.kind), ("name", &owner.name), ("uid", &owner.uid)] {
        if value.is_empty() {
            causes.push(Cause::required(format!("{path}.{field}"), "must not be empty"));
        }
    }
    if group.is_empty() && version == "v1" && owner.kind == "Event" {
        causes.push(Cause::invalid(
            path,
            &owner.go_json(),
            &format!("{group}/{version}, Kind={} is disallowed from being an owner", owner.kind),
        ));
    }
}

/// `ValidateFinalizers`: every finalizer is a qualified name; `orphan` and `foregroundDeletion` clash.
fn validate_finalizers(finalizers: &[Value], causes: &mut Vec<Cause>) {
    let mut names = Vec::with_capacity(finalizers.len());
    for (idx, item) in finalizers.iter().enumerate() {
        let name = Reader { causes: &mut *causes }.string(Some(item), &format!("metadata.finalizers[{idx}]"));
        for msg in qualified_name(&name) {
            causes.push(Cause::invalid("metadata.finalizers", &go_quote(&name), &msg));
        }
        names.push(name);
    }
    if names.iter().any(|f| f == FINALIZER_ORPHAN) && names.iter().any(|f| f == FINALIZER_FOREGROUND) {
        let list = Value::Array(names.into_iter().map(Value::String).collect());
        causes.push(Cause::invalid(
            "metadata.finalizers",
            &go_json(&list),
            &format!("finalizer {FINALIZER_ORPHAN} and {FINALIZER_FOREGROUND} cannot be both set"),
        ));
    }
}

/// The Status `message` of a 422 `Invalid` answer, as `errors.NewInvalid` builds it:
/// `<Kind> "<name>" is invalid: <field>: <message>`, several causes as `[a, b]` (duplicates dropped),
/// and just `<Kind> "<name>" is invalid` with no cause. `kind` is the qualified kind as the server
/// prints a `GroupKind`: `Kind` for the core group, else `Kind.group` (`Deployment.apps`).
#[cfg(test)]
pub(crate) fn invalid_message(kind: &str, name: &str, causes: &[Cause]) -> String {
    invalid_message_of(kind, name, causes.iter().map(|c| (c.field.as_str(), c.message.as_str())))
}

/// [`invalid_message`] over `(field, message)` pairs, for causes of any type.
pub(crate) fn invalid_message_of<'a>(
    kind: &str,
    name: &str,
    causes: impl Iterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut seen: Vec<String> = Vec::new();
    for (field, message) in causes {
        let line = if field.is_empty() { message.to_owned() } else { format!("{field}: {message}") };
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    let quoted = go_quote(name);
    match seen.as_slice() {
        [] => format!("{kind} {quoted} is invalid"),
        [one] => format!("{kind} {quoted} is invalid: {one}"),
        many => format!("{kind} {quoted} is invalid: [{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{
        Cause, NameRule, dns1035_label, dns1123_label, dns1123_subdomain, go_json, go_json_string, go_quote,
        invalid_message, label_value, qualified_name, validate_object_meta,
    };

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
        characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', \
        regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters \
        or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex \
        used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
        start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or \
        'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    const KEY_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and \
        must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', \
        regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, \
        '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or \
        'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    fn meta(v: &Value) -> Vec<Cause> {
        validate_object_meta(v, NameRule::Dns1123Subdomain, true)
    }

    fn invalid(field: &str, message: String) -> Cause {
        Cause { reason: "FieldValueInvalid", field: field.to_owned(), message }
    }

    #[test]
    fn dns1123_subdomain_accepts_dotted_lowercase_names() {
        assert!(dns1123_subdomain("example.com").is_empty());
        assert!(dns1123_subdomain("a-1.b-2").is_empty());
        assert!(dns1123_subdomain(&"a".repeat(253)).is_empty());
    }

    #[test]
    fn dns1123_subdomain_explains_the_regex_and_the_length_in_characters() {
        for bad in ["Bad_Name", "", "-a", "a-", "a..b", ".a", "a.", "é"] {
            assert_eq!(dns1123_subdomain(bad), [SUBDOMAIN_MSG], "{bad:?}");
        }
        assert_eq!(dns1123_subdomain(&"a".repeat(254)), ["must be no more than 253 characters"]);
        assert_eq!(
            dns1123_subdomain(&"A".repeat(254)),
            ["must be no more than 253 characters", SUBDOMAIN_MSG]
        );
    }

    #[test]
    fn dns1123_label_refuses_dots_separately_from_other_characters() {
        assert!(dns1123_label("my-name").is_empty());
        assert_eq!(dns1123_label("a.b"), ["must not contain dots"]);
        assert_eq!(dns1123_label("A"), [LABEL_MSG]);
        assert_eq!(dns1123_label(""), [LABEL_MSG]);
        assert_eq!(dns1123_label(&"a".repeat(64)), ["must be no more than 63 characters"]);
    }

    #[test]
    fn dns1035_label_must_start_with_a_letter() {
        assert!(dns1035_label("abc-123").is_empty());
        assert_eq!(dns1035_label("1abc"), [DNS1035_MSG]);
        assert_eq!(dns1035_label("a.b"), [DNS1035_MSG]);
        assert_eq!(dns1035_label(&"a".repeat(64)), ["must be no more than 63 characters"]);
    }

    #[test]
    fn qualified_name_accepts_an_optional_subdomain_prefix() {
        for good in ["MyName", "my.name", "123-abc", "a_b", "example.com/MyName", "kopf.dev/finalizer"] {
            assert!(qualified_name(good).is_empty(), "{good}");
        }
    }

    #[test]
    fn qualified_name_checks_the_name_part_in_bytes() {
        assert_eq!(qualified_name("-a"), [KEY_NAME_MSG]);
        assert_eq!(qualified_name(""), ["name part must be non-empty", KEY_NAME_MSG]);
        assert_eq!(qualified_name("a/"), ["name part must be non-empty", KEY_NAME_MSG]);
        assert_eq!(qualified_name(&"a".repeat(64)), ["name part must be no more than 63 bytes"]);
    }

    #[test]
    fn qualified_name_checks_the_prefix_as_a_subdomain_in_bytes() {
        assert_eq!(qualified_name("/a"), ["prefix part must be non-empty"]);
        assert_eq!(qualified_name("Example.com/a"), [format!("prefix part {SUBDOMAIN_MSG}")]);
        assert_eq!(
            qualified_name(&format!("{}/a", "a".repeat(254))),
            ["prefix part must be no more than 253 bytes"]
        );
    }

    #[test]
    fn qualified_name_with_two_slashes_gets_a_single_explanation() {
        assert_eq!(
            qualified_name("a/b/c"),
            [
                "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and \
              end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for \
              validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix \
              and '/' (e.g. 'example.com/MyName')"
            ]
        );
    }

    #[test]
    fn label_value_may_be_empty_and_is_limited_to_63_bytes() {
        assert!(label_value("").is_empty());
        assert!(label_value("My_value-1.2").is_empty());
        assert_eq!(label_value("-a"), [VALUE_MSG]);
        assert_eq!(label_value("a b"), [VALUE_MSG]);
        assert_eq!(label_value(&"a".repeat(64)), ["must be no more than 63 bytes"]);
        assert_eq!(label_value(&"é".repeat(32)), ["must be no more than 63 bytes", VALUE_MSG]);
    }

    #[test]
    fn name_rules_check_names_and_generate_name_prefixes() {
        assert!(NameRule::Dns1123Subdomain.check("web-", true).is_empty());
        assert_eq!(NameRule::Dns1123Subdomain.check("web-", false), [SUBDOMAIN_MSG]);
        assert!(NameRule::Dns1123Label.check("ns-", true).is_empty());
        assert!(NameRule::Dns1035Label.check("svc-", true).is_empty());
        assert_eq!(NameRule::Dns1035Label.check("1svc", false), [DNS1035_MSG]);
        assert!(NameRule::Dns1123Subdomain.check("-", true).len() == 1);
    }

    #[test]
    fn masking_a_generate_name_drops_two_bytes_before_appending_an_a_as_the_server_does() {
        // "a_-" is masked to "aa": the '_' vanishes, so this prefix passes like on the real server.
        assert!(NameRule::Dns1123Subdomain.check("a_-", true).is_empty());
        // A multi-byte character before the dash is cut in half without a panic, and fails.
        assert_eq!(NameRule::Dns1123Subdomain.check("éé-", true), [SUBDOMAIN_MSG]);
    }

    #[test]
    fn path_segment_names_refuse_dot_names_slashes_and_percents() {
        assert!(NameRule::PathSegment.check("system:admin", false).is_empty());
        assert_eq!(NameRule::PathSegment.check(".", false), ["may not be '.'"]);
        assert_eq!(NameRule::PathSegment.check("..", false), ["may not be '..'"]);
        assert_eq!(
            NameRule::PathSegment.check("a/b%", false),
            ["may not contain '/'", "may not contain '%'"]
        );
        assert!(NameRule::PathSegment.check("..", true).is_empty());
        assert_eq!(NameRule::PathSegment.check("a%", true), ["may not contain '%'"]);
    }

    #[test]
    fn valid_metadata_has_no_causes() {
        let causes = meta(&json!({
            "name": "web", "namespace": "default", "generation": 3,
            "labels": {"app": "web", "example.com/tier": ""},
            "annotations": {"Example.COM/Note": "anything at all"},
            "finalizers": ["kopf.zalando.org/KopfFinalizerMarker", "no-slash"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1",
                                 "controller": true}],
        }));
        assert_eq!(causes, []);
    }

    #[test]
    fn a_name_or_generate_name_is_required() {
        let required = Cause {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        };
        for missing in [
            json!({"namespace": "default"}),
            json!({"namespace": "default", "name": ""}),
            json!({"namespace": "default", "name": null}),
        ] {
            assert_eq!(meta(&missing), std::slice::from_ref(&required));
        }
        assert_eq!(meta(&json!({"namespace": "default", "generateName": "web-"})), []);
    }

    #[test]
    fn a_bad_name_and_a_bad_generate_name_are_invalid() {
        assert_eq!(
            meta(&json!({"name": "Bad_Name", "namespace": "default"})),
            [invalid("metadata.name", format!("Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"))]
        );
        assert_eq!(
            meta(&json!({"generateName": "Bad-", "namespace": "default"})),
            [invalid("metadata.generateName", format!("Invalid value: \"Bad-\": {SUBDOMAIN_MSG}"))]
        );
    }

    #[test]
    fn the_name_rule_decides_how_names_are_checked() {
        let v = json!({"name": "a.b"});
        assert_eq!(validate_object_meta(&v, NameRule::Dns1123Subdomain, false), []);
        assert_eq!(
            validate_object_meta(&v, NameRule::Dns1123Label, false),
            [invalid("metadata.name", "Invalid value: \"a.b\": must not contain dots".into())]
        );
        assert_eq!(validate_object_meta(&json!({"name": "Sys:Admin"}), NameRule::PathSegment, false), []);
    }

    #[test]
    fn namespaced_objects_need_a_dns_label_namespace_and_cluster_objects_none() {
        assert_eq!(
            meta(&json!({"name": "a"})),
            [Cause {
                reason: "FieldValueRequired",
                field: "metadata.namespace".into(),
                message: "Required value".into()
            }]
        );
        assert_eq!(
            meta(&json!({"name": "a", "namespace": "a.b"})),
            [invalid("metadata.namespace", "Invalid value: \"a.b\": must not contain dots".into())]
        );
        assert_eq!(
            validate_object_meta(&json!({"name": "a", "namespace": "x"}), NameRule::Dns1123Subdomain, false),
            [Cause {
                reason: "FieldValueForbidden",
                field: "metadata.namespace".into(),
                message: "Forbidden: not allowed on this type".into()
            }]
        );
    }

    #[test]
    fn a_negative_generation_is_invalid() {
        assert_eq!(
            meta(&json!({"name": "a", "namespace": "n", "generation": -1})),
            [invalid("metadata.generation", "Invalid value: -1: must be greater than or equal to 0".into())]
        );
    }

    #[test]
    fn label_keys_and_values_are_checked_under_metadata_labels() {
        assert_eq!(
            meta(&json!({"name": "a", "namespace": "n", "labels": {"-bad": "ok", "good": "bad value"}})),
            [
                invalid("metadata.labels", format!("Invalid value: \"-bad\": {KEY_NAME_MSG}")),
                invalid("metadata.labels", format!("Invalid value: \"bad value\": {VALUE_MSG}")),
            ]
        );
    }

    #[test]
    fn annotation_keys_are_checked_case_insensitively_and_values_are_free() {
        assert_eq!(
            meta(&json!({"name": "a", "namespace": "n", "annotations": {"A.B/C": "<any> value"}})),
            []
        );
        assert_eq!(
            meta(&json!({"name": "a", "namespace": "n", "annotations": {"Bad Key": ""}})),
            [invalid("metadata.annotations", format!("Invalid value: \"Bad Key\": {KEY_NAME_MSG}"))]
        );
    }

    #[test]
    fn annotations_may_total_at_most_256_kib() {
        let at_limit = "x".repeat(256 * 1024 - 1);
        assert_eq!(meta(&json!({"name": "a", "namespace": "n", "annotations": {"k": at_limit}})), []);
        let over = "x".repeat(256 * 1024);
        assert_eq!(
            meta(&json!({"name": "a", "namespace": "n", "annotations": {"k": over}})),
            [Cause {
                reason: "FieldValueTooLong",
                field: "metadata.annotations".into(),
                message: "Too long: may not be more than 262144 bytes".into()
            }]
        );
    }

    #[test]
    fn finalizers_must_be_qualified_names_and_orphan_excludes_foreground_deletion() {
        assert_eq!(
            meta(&json!({"name": "a", "namespace": "n", "finalizers": ["bad finalizer"]})),
            [invalid("metadata.finalizers", format!("Invalid value: \"bad finalizer\": {KEY_NAME_MSG}"))]
        );
        assert_eq!(
            meta(&json!({"name": "a", "namespace": "n", "finalizers": ["orphan", "foregroundDeletion"]})),
            [invalid(
                "metadata.finalizers",
                "Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion \
                 cannot be both set"
                    .into()
            )]
        );
    }

    #[test]
    fn owner_references_need_api_version_kind_name_and_uid() {
        let required = |field: &str| Cause {
            reason: "FieldValueRequired",
            field: format!("metadata.ownerReferences[0].{field}"),
            message: "Required value: must not be empty".into(),
        };
        assert_eq!(
            meta(&json!({"name": "a", "namespace": "n", "ownerReferences": [{}]})),
            [required("apiVersion"), required("kind"), required("name"), required("uid")]
        );
    }

    #[test]
    fn an_owner_api_version_must_be_group_slash_version_or_version() {
        for bad in ["a/b/c", "apps/", "/"] {
            let refs = json!([{"apiVersion": bad, "kind": "K", "name": "n", "uid": "u"}]);
            assert_eq!(
                meta(&json!({"name": "a", "namespace": "n", "ownerReferences": refs})),
                [invalid(
                    "metadata.ownerReferences[0].apiVersion",
                    format!("Invalid value: \"{bad}\": must be <group>/<version> or <version>")
                )],
                "{bad}"
            );
        }
    }

    #[test]
    fn a_core_event_cannot_be_an_owner() {
        let refs = json!([
            {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u", "blockOwnerDeletion": false}
        ]);
        assert_eq!(
            meta(&json!({"name": "a", "namespace": "n", "ownerReferences": refs})),
            [invalid(
                "metadata.ownerReferences[0]",
                "Invalid value: {\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"u\",\
                 \"blockOwnerDeletion\":false}: /v1, Kind=Event is disallowed from being an owner"
                    .into()
            )]
        );
        let events_group =
            json!([{"apiVersion": "events.k8s.io/v1", "kind": "Event", "name": "e", "uid": "u"}]);
        assert_eq!(meta(&json!({"name": "a", "namespace": "n", "ownerReferences": events_group})), []);
    }

    #[test]
    fn at_most_one_owner_reference_may_be_the_controller() {
        let refs = json!([
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": "2", "controller": true},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "3", "controller": false},
        ]);
        assert_eq!(
            meta(&json!({"name": "x", "namespace": "n", "ownerReferences": refs})),
            [invalid(
                "metadata.ownerReferences",
                "Invalid value: [{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"a\",\"uid\":\"1\",\
                 \"controller\":true},{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"b\",\"uid\":\"2\",\
                 \"controller\":true},{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"c\",\"uid\":\"3\",\
                 \"controller\":false}]: Only one reference can have Controller set to true. Found \"true\" in \
                 references for ConfigMap/a and ConfigMap/b"
                    .into()
            )]
        );
    }

    #[test]
    fn wrongly_typed_fields_are_type_invalid_and_null_is_the_zero_value() {
        let type_invalid = |field: &str, message: &str| Cause {
            reason: "FieldValueTypeInvalid",
            field: field.into(),
            message: message.into(),
        };
        assert_eq!(
            validate_object_meta(&json!(5), NameRule::Dns1123Subdomain, true),
            [type_invalid("metadata", "Invalid value: 5: must be an object")]
        );
        assert_eq!(
            meta(&json!({"name": 1, "generateName": "g-", "namespace": "n", "generation": 1.5,
                        "labels": "x", "annotations": {"a": true}, "finalizers": [null, 2],
                        "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "n", "uid": "u",
                                             "controller": "yes"}, 7]})),
            [
                type_invalid("metadata.name", "Invalid value: 1: must be a string"),
                type_invalid("metadata.generation", "Invalid value: 1.5: must be an integer"),
                type_invalid("metadata.labels", "Invalid value: \"x\": must be an object"),
                type_invalid("metadata.annotations[a]", "Invalid value: true: must be a string"),
                type_invalid(
                    "metadata.ownerReferences[0].controller",
                    "Invalid value: \"yes\": must be a boolean"
                ),
                type_invalid("metadata.ownerReferences[1]", "Invalid value: 7: must be an object"),
                invalid("metadata.finalizers", "Invalid value: \"\": name part must be non-empty".into()),
                invalid("metadata.finalizers", format!("Invalid value: \"\": {KEY_NAME_MSG}")),
                type_invalid("metadata.finalizers[1]", "Invalid value: 2: must be a string"),
                invalid("metadata.finalizers", "Invalid value: \"\": name part must be non-empty".into()),
                invalid("metadata.finalizers", format!("Invalid value: \"\": {KEY_NAME_MSG}")),
            ]
        );
    }

    #[test]
    fn causes_come_in_the_servers_field_order() {
        let causes = meta(&json!({
            "finalizers": ["a b"], "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "n"}],
            "annotations": {"a b": ""}, "labels": {"a b": ""}, "generation": -1, "namespace": "N",
            "name": "N", "generateName": "G",
        }));
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.generateName",
                "metadata.name",
                "metadata.namespace",
                "metadata.generation",
                "metadata.labels",
                "metadata.annotations",
                "metadata.ownerReferences[0].uid",
                "metadata.finalizers",
            ]
        );
    }

    #[test]
    fn the_invalid_message_quotes_the_name_and_shows_one_cause_bare() {
        let causes = meta(&json!({"name": "Bad_Name", "namespace": "default"}));
        assert_eq!(
            invalid_message("ConfigMap", "Bad_Name", &causes),
            format!(
                "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"
            )
        );
    }

    #[test]
    fn the_invalid_message_brackets_several_causes_and_drops_repeats() {
        let a = Cause::required("metadata.name", "name or generateName is required");
        let b = Cause::invalid("metadata.labels", "\"x y\"", "bad");
        assert_eq!(
            invalid_message("Deployment.apps", "", &[a.clone(), b, a.clone()]),
            "Deployment.apps \"\" is invalid: [metadata.name: Required value: name or generateName is required, \
             metadata.labels: Invalid value: \"x y\": bad]"
        );
        assert_eq!(
            invalid_message("Pod", "p", &[a.clone(), a]),
            "Pod \"p\" is invalid: metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(invalid_message("Pod", "p", &[]), "Pod \"p\" is invalid");
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("plain"), "\"plain\"");
        assert_eq!(go_quote("q\"b\\"), "\"q\\\"b\\\\\"");
        assert_eq!(go_quote("\u{7}\u{8}\u{c}\n\r\t\u{b}"), "\"\\a\\b\\f\\n\\r\\t\\v\"");
        assert_eq!(go_quote("\0\u{1f}\u{7f}"), "\"\\x00\\x1f\\x7f\"");
        assert_eq!(go_quote("é日本 <&>"), "\"é日本 <&>\"");
        assert_eq!(go_quote("\u{a0}\u{200b}\u{feff}\u{85}"), "\"\\u00a0\\u200b\\ufeff\\u0085\"");
        assert_eq!(go_quote("\u{e0001}\u{10fffd}"), "\"\\U000e0001\\U0010fffd\"");
    }

    #[test]
    fn go_json_escapes_like_encoding_json_and_sorts_object_keys() {
        assert_eq!(go_json_string("<a&b>\u{2028}\u{2029}"), "\"\\u003ca\\u0026b\\u003e\\u2028\\u2029\"");
        assert_eq!(go_json_string("\"\\\u{8}\u{c}\n\r\t\u{1}"), "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\"");
        assert_eq!(go_json_string("é"), "\"é\"");
        assert_eq!(
            go_json(&json!({"b": [1, true, null], "a": {"y": 1.5, "x": "s"}})),
            "{\"a\":{\"x\":\"s\",\"y\":1.5},\"b\":[1,true,null]}"
        );
    }
}
