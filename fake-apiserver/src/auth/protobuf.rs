//! The protobuf bodies of the review resources, decoded to JSON. client-go's typed clients, which
//! `kubectl auth can-i` and `kubectl auth whoami` use, send their reviews as protobuf
//! (`application/vnd.kubernetes.protobuf`): the magic `k8s\0` and a `runtime.Unknown` whose `raw`
//! field holds the review message. Only the fields a review reads are decoded; answers go back as
//! JSON, which those clients accept.

use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// The media type of Kubernetes protobuf.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// One field of a message: its number and its value (varints and fixed-width values are skipped by
/// the callers here, so only length-delimited values are kept).
struct Field<'a> {
    number: u64,
    bytes: &'a [u8],
}

fn bad(what: &str) -> ApiError {
    ApiError::BadRequest(format!("the protobuf body is malformed: {what}"))
}

fn varint(input: &mut &[u8]) -> Result<u64, ApiError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or_else(|| bad("a varint is cut short"))?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(bad("a varint is too long"))
}

/// The length-delimited fields of a message, in order.
fn fields(mut input: &[u8]) -> Result<Vec<Field<'_>>, ApiError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let key = varint(&mut input)?;
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(&mut input)?;
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                input = input.get(n..).ok_or_else(|| bad("a fixed-width value is cut short"))?;
            }
            2 => {
                let len = usize::try_from(varint(&mut input)?).map_err(|_| bad("a length overflows"))?;
                let bytes = input.get(..len).ok_or_else(|| bad("a length-delimited value is cut short"))?;
                input = &input[len..];
                out.push(Field { number, bytes });
            }
            _ => return Err(bad("an unknown wire type")),
        }
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| bad("a string is not UTF-8"))
}

/// Decodes the string fields of a message into JSON keys, by field number; `repeated` keys collect.
fn strings(bytes: &[u8], names: &[(u64, &str)], repeated: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let mut object = Map::new();
    for field in fields(bytes)? {
        if let Some((_, name)) = names.iter().find(|(n, _)| *n == field.number) {
            let value = Value::String(text(field.bytes)?);
            if repeated.contains(name) {
                match object.entry(*name).or_insert_with(|| json!([])) {
                    Value::Array(items) => items.push(value),
                    _ => unreachable!("a repeated field is an array"),
                }
            } else {
                object.insert((*name).to_owned(), value);
            }
        }
    }
    Ok(object)
}

fn metadata(bytes: &[u8]) -> Result<Value, ApiError> {
    Ok(Value::Object(strings(bytes, &[(1, "name"), (2, "generateName"), (3, "namespace")], &[])?))
}

const RESOURCE_ATTRIBUTES: &[(u64, &str)] = &[
    (1, "namespace"),
    (2, "verb"),
    (3, "group"),
    (4, "version"),
    (5, "resource"),
    (6, "subresource"),
    (7, "name"),
];

/// A `SubjectAccessReviewSpec` or `SelfSubjectAccessReviewSpec` (the self one has fields 1 and 2 only).
fn access_spec(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut spec = strings(bytes, &[(3, "user"), (4, "groups"), (6, "uid")], &["groups"])?;
    for field in fields(bytes)? {
        match field.number {
            1 => {
                spec.insert(
                    "resourceAttributes".into(),
                    Value::Object(strings(field.bytes, RESOURCE_ATTRIBUTES, &[])?),
                );
            }
            2 => {
                let attributes = strings(field.bytes, &[(1, "path"), (2, "verb")], &[])?;
                spec.insert("nonResourceAttributes".into(), Value::Object(attributes));
            }
            _ => {}
        }
    }
    Ok(Value::Object(spec))
}

/// A review's protobuf body as JSON; `plural` says which review it is.
pub(crate) fn decode_review(plural: &str, body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| bad("the k8s\\0 prefix is missing"))?;
    let mut type_meta = Map::new();
    let mut raw: &[u8] = &[];
    for field in fields(envelope)? {
        match field.number {
            1 => type_meta = strings(field.bytes, &[(1, "apiVersion"), (2, "kind")], &[])?,
            2 => raw = field.bytes,
            _ => {}
        }
    }
    let mut object = type_meta;
    for field in fields(raw)? {
        let value = match (field.number, plural) {
            (1, _) => ("metadata", metadata(field.bytes)?),
            (2, "selfsubjectaccessreviews" | "subjectaccessreviews" | "localsubjectaccessreviews") => {
                ("spec", access_spec(field.bytes)?)
            }
            (2, "selfsubjectrulesreviews") => {
                ("spec", Value::Object(strings(field.bytes, &[(1, "namespace")], &[])?))
            }
            (2, "tokenreviews") => (
                "spec",
                Value::Object(strings(field.bytes, &[(1, "token"), (2, "audiences")], &["audiences"])?),
            ),
            _ => continue,
        };
        object.insert(value.0.to_owned(), value.1);
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from((number << 3) | 2).unwrap(), u8::try_from(bytes.len()).unwrap()];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_self_subject_access_review_decodes_from_its_protobuf_envelope() {
        let attributes = [field(1, b"ops"), field(2, b"list"), field(5, b"pods")].concat();
        let spec = field(1, &attributes);
        let raw = [field(1, &field(1, b"r")), field(2, &spec)].concat();
        let type_meta = [field(1, b"authorization.k8s.io/v1"), field(2, b"SelfSubjectAccessReview")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        assert_eq!(
            decode_review("selfsubjectaccessreviews", &body).unwrap(),
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                   "metadata": {"name": "r"},
                   "spec": {"resourceAttributes": {"namespace": "ops", "verb": "list", "resource": "pods"}}})
        );
    }

    #[test]
    fn truncated_or_unprefixed_bodies_are_bad_requests() {
        assert_eq!(decode_review("selfsubjectaccessreviews", b"{}").unwrap_err().code(), 400);
        assert_eq!(decode_review("selfsubjectaccessreviews", b"k8s\0\x0a\x05ab").unwrap_err().code(), 400);
        assert_eq!(decode_review("selfsubjectaccessreviews", b"k8s\0\x0a").unwrap_err().code(), 400);
    }
}
