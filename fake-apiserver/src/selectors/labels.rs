//! Label selectors: the `?labelSelector=` syntax of kube-apiserver, and `metav1.LabelSelector` objects.
//!
//! The grammar, the lexer's quirks and the error texts follow apimachinery's `pkg/labels/selector.go`:
//!
//! ```text
//! selector    ::= requirement | requirement "," selector
//! requirement ::= ["!"] KEY [ ("in" | "notin") "(" VALUES ")" | ("=" | "==" | "!=" | ">" | "<") VALUE ]
//! ```
//!
//! A bare `KEY` requires the label to exist, `!KEY` requires it to be absent, `notin` and `!=` also
//! match objects without the label, and `>`/`<` compare the label's value as a 64-bit integer (a label
//! that is no integer never matches). Spaces, tabs, CR and LF separate tokens; the empty selector
//! matches everything. Keys must be qualified names and values label values (see
//! [`crate::validation`]); errors name the offending field as the server does, e.g.
//! `unable to parse requirement: values[0][app]: Invalid value: "a b": ...`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use super::SelectorError;
use crate::validation::{go_json, go_quote, label_value, qualified_name};

/// The operator of one requirement (apimachinery's `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    /// `k=v`.
    Equals,
    /// `k==v`.
    DoubleEquals,
    /// `k!=v`.
    NotEquals,
    /// `k in (a,b)`.
    In,
    /// `k notin (a,b)`.
    NotIn,
    /// `k`.
    Exists,
    /// `!k`.
    DoesNotExist,
    /// `k>1`.
    GreaterThan,
    /// `k<1`.
    LessThan,
}

/// One requirement: a key, an operator and its values, all validated.
#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    operator: Operator,
    /// The values; from the text syntax they come sorted and without duplicates.
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement as apimachinery's `NewRequirement` does: the key must be a qualified name,
    /// the number of values must suit the operator, `gt`/`lt` values must be integers, and every value
    /// must be a label value. The error is the aggregated field errors (`[a, b]` for several).
    fn new(key: String, operator: Operator, values: Vec<String>) -> Result<Self, String> {
        let mut errs = Vec::new();
        let key_errs = qualified_name(&key);
        if !key_errs.is_empty() {
            errs.push(format!("key: Invalid value: {}: {}", go_quote(&key), key_errs.join("; ")));
        }
        // Go marshals the nil slice that an empty value list is here as `null`.
        let values_json = || {
            if values.is_empty() {
                "null".to_owned()
            } else {
                go_json(&Value::Array(values.iter().cloned().map(Value::String).collect()))
            }
        };
        let mut values_error =
            |detail: &str| errs.push(format!("values: Invalid value: {}: {detail}", values_json()));
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                values_error("for 'in', 'notin' operators, values set can't be empty");
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
                values_error("exact-match compatibility requires one single value");
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                values_error("values set must be empty for exists and does not exist");
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    values_error("for 'Gt', 'Lt' operators, exactly one value is required");
                }
                for (i, value) in values.iter().enumerate() {
                    if value.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be \
                             an integer",
                            go_quote(value)
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, value) in values.iter().enumerate() {
            let value_errs = label_value(value);
            if !value_errs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    go_quote(value),
                    value_errs.join("; ")
                ));
            }
        }
        match aggregate(errs) {
            Some(message) => Err(message),
            None => Ok(Self { key, operator, values }),
        }
    }

    /// Whether `labels` satisfy this requirement.
    fn matches(&self, labels: &impl LabelSource) -> bool {
        let found = labels.label(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                found.is_some_and(|value| self.values.iter().any(|v| v == value))
            }
            Operator::NotIn | Operator::NotEquals => {
                found.is_none_or(|value| !self.values.iter().any(|v| v == value))
            }
            Operator::Exists => found.is_some(),
            Operator::DoesNotExist => found.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(found), [wanted]) = (found, self.values.as_slice()) else {
                    return false;
                };
                match (found.parse::<i64>(), wanted.parse::<i64>()) {
                    (Ok(found), Ok(wanted)) if self.operator == Operator::GreaterThan => found > wanted,
                    (Ok(found), Ok(wanted)) => found < wanted,
                    _ => false,
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// The requirement as apimachinery's `Requirement.String` writes it: `!k`, `k`, `k=v`, `k==v`,
    /// `k!=v`, `k>1`, `k<1`, `k in (a,b)`, `k notin (a,b)`, values sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Exists => return f.write_str(&self.key),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
        };
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        let values = values.join(",");
        match self.operator {
            Operator::In | Operator::NotIn => write!(f, "{}{op}({values})", self.key),
            _ => write!(f, "{}{op}{values}", self.key),
        }
    }
}

/// Joins error messages as apimachinery's aggregate does: duplicates dropped, one message as is,
/// several as `[a, b]`; `None` without any.
fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut unique: Vec<String> = Vec::with_capacity(errs.len());
    for err in errs {
        if !unique.contains(&err) {
            unique.push(err);
        }
    }
    match unique.len() {
        0 => None,
        1 => unique.pop(),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

/// A parsed label selector: the AND of its requirements, sorted by key.
/// Anything a selector can read labels from.
pub(crate) trait LabelSource {
    /// The value of a label, if set.
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSource for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
    /// Set for the selector that matches nothing (a `null` `metav1.LabelSelector`).
    nothing: bool,
}

impl LabelSelector {
    /// Parses the `?labelSelector=` syntax; the error's text is the server's 400 message.
    pub(crate) fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser { items: scan(s), position: 0 };
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements, nothing: false })
    }

    /// Whether `labels` satisfy every requirement (always for the empty selector, never for the
    /// selector of a `null` `metav1.LabelSelector`).
    pub(crate) fn matches(&self, labels: &impl LabelSource) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector restricts nothing (no requirement, and not the match-nothing selector).
    pub(crate) fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical text of the selector, as apimachinery's `Selector.String` (requirements sorted by
    /// key, joined with ','); empty for the empty and the match-nothing selector.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// Builds a selector from a `metav1.LabelSelector` JSON object (`{matchLabels, matchExpressions}`) as
/// `metav1.LabelSelectorAsSelector` does: `null` matches nothing, an object without requirements
/// matches everything, `matchLabels` entries are `key=value`, and `matchExpressions` operators are
/// `In`, `NotIn`, `Exists`, `DoesNotExist`. Requirement errors are the server's field errors (unwrapped,
/// e.g. `values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty`); JSON
/// that is not shaped like a label selector gives [`SelectorError::Malformed`].
pub(crate) fn from_label_selector_json(v: &Value) -> Result<LabelSelector, SelectorError> {
    let object = match v {
        Value::Null => {
            return Ok(LabelSelector { requirements: Vec::new(), nothing: true });
        }
        Value::Object(object) => object,
        _ => return Err(SelectorError::Malformed("must be an object".to_owned())),
    };
    let mut requirements = Vec::new();
    match object.get("matchLabels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            let mut labels: Vec<(&String, &Value)> = labels.iter().collect();
            labels.sort_by(|a, b| a.0.cmp(b.0));
            for (key, value) in labels {
                let value = json_string(value, &format!("matchLabels[{key}]"))?;
                let requirement = Requirement::new(key.clone(), Operator::Equals, vec![value])
                    .map_err(SelectorError::InvalidRequirement)?;
                requirements.push(requirement);
            }
        }
        Some(_) => {
            return Err(SelectorError::Malformed("matchLabels must be an object".to_owned()));
        }
    }
    let expressions = match object.get("matchExpressions") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(expressions)) => expressions.as_slice(),
        Some(_) => {
            return Err(SelectorError::Malformed("matchExpressions must be an array".to_owned()));
        }
    };
    for (i, expression) in expressions.iter().enumerate() {
        let Value::Object(expression) = expression else {
            return Err(SelectorError::Malformed(format!("matchExpressions[{i}] must be an object")));
        };
        let field = |name: &str| format!("matchExpressions[{i}].{name}");
        let key = expression.get("key").map_or(Ok(String::new()), |k| json_string(k, &field("key")))?;
        let operator =
            expression.get("operator").map_or(Ok(String::new()), |o| json_string(o, &field("operator")))?;
        let operator = match operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            _ => return Err(SelectorError::UnknownOperator(operator)),
        };
        let values = match expression.get("values") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(values)) => values
                .iter()
                .enumerate()
                .map(|(j, value)| json_string(value, &field(&format!("values[{j}]"))))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(SelectorError::Malformed(format!("{} must be an array", field("values"))));
            }
        };
        requirements
            .push(Requirement::new(key, operator, values).map_err(SelectorError::InvalidRequirement)?);
    }
    requirements.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(LabelSelector { requirements, nothing: false })
}

/// A JSON string (or `null`, Go's zero value ""), else a `Malformed` error naming `field`.
fn json_string(v: &Value, field: &str) -> Result<String, SelectorError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(SelectorError::Malformed(format!("{field} must be a string"))),
    }
}

/// A lexer token (apimachinery's `Token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A run of special symbols that is no operator (unreachable in practice, kept for fidelity).
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// The token a literal spells, if it is an operator or keyword.
fn keyword(literal: &[u8]) -> Option<Token> {
    Some(match literal {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(ch: u8) -> bool {
    matches!(ch, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// The byte lexer. Like apimachinery's, it reads a NUL byte as "end of input": where a token should
/// start (after whitespace) it ends the selector, while right after an identifier or a symbol it is
/// swallowed and merely ends that token.
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special_symbol(ch) { self.scan_special_symbol() } else { self.scan_id_or_keyword() }
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let mut buffer = Vec::new();
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            buffer.push(ch);
        }
        let literal = String::from_utf8_lossy(&buffer).into_owned();
        (keyword(&buffer).unwrap_or(Token::Identifier), literal)
    }

    /// The longest operator made of special symbols (`!=` rather than `!`).
    fn scan_special_symbol(&mut self) -> (Token, String) {
        let mut buffer = Vec::new();
        let mut last: Option<(Token, usize)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special_symbol(ch) {
                self.unread();
                break;
            }
            buffer.push(ch);
            if let Some(token) = keyword(&buffer) {
                last = Some((token, buffer.len()));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        match last {
            Some((token, len)) => (token, String::from_utf8_lossy(&buffer[..len]).into_owned()),
            None => (
                Token::Error,
                format!("error expected: keyword found '{}'", String::from_utf8_lossy(&buffer)),
            ),
        }
    }
}

/// All tokens of `s`, the last being `EndOfString`.
fn scan(s: &str) -> Vec<(Token, String)> {
    let mut lexer = Lexer { s: s.as_bytes(), pos: 0 };
    let mut items = Vec::new();
    loop {
        let (token, literal) = lexer.lex();
        items.push((token, literal));
        if token == Token::EndOfString {
            return items;
        }
    }
}

/// Whether `in`/`notin` are operators (after a key) or plain identifiers (anywhere else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// The recursive-descent parser over the scanned tokens; reading past the end gives `EndOfString`.
struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn lookahead(&self, context: Context) -> (Token, String) {
        let (token, literal) = self
            .items
            .get(self.position)
            .map_or((Token::EndOfString, String::new()), |(t, l)| (*t, l.clone()));
        match token {
            Token::In | Token::NotIn if context == Context::Values => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.lookahead(context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    requirements.push(self.parse_requirement().map_err(SelectorError::Requirement)?);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(SelectorError::Unexpected {
                                    found: literal,
                                    expected: "identifier after ','",
                                });
                            }
                        }
                        _ => {
                            return Err(SelectorError::Unexpected {
                                found: literal,
                                expected: "',' or 'end of string'",
                            });
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(SelectorError::Unexpected {
                        found: literal,
                        expected: "!, identifier, or 'end of string'",
                    });
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(operator @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::new(key, operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, operator, values.into_iter().collect())
    }

    /// The key, with `DoesNotExist` after a `!`, or `Exists` if nothing but ',' or the end follows it.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        let errs = qualified_name(&literal);
        if !errs.is_empty() {
            // The parser validates the key with a nil field path, which Go prints as "<nil>".
            return Err(format!("<nil>: Invalid value: {}: {}", go_quote(&literal), errs.join("; ")));
        }
        let (next, _) = self.lookahead(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!("found '{literal}', expected: in, notin, =, ==, !=, gt, lt"));
            }
        })
    }

    /// `(a,b,...)`; `()` is the set of the empty value, and empty items between commas are "".
    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!("found '{literal}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut values = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.insert(literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => {}
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        values.insert(String::new());
                        return Ok(values);
                    }
                    if next == Token::Comma {
                        values.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>`, `<`; nothing before ',' or the end is "".
    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if matches!(token, Token::EndOfString | Token::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(BTreeSet::from([literal]))
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::{LabelSelector, from_label_selector_json};

    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and \
        must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', \
        regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, \
        '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or \
        'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    fn err(s: &str) -> String {
        LabelSelector::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn the_empty_or_blank_selector_is_empty_and_matches_everything() {
        for s in ["", "   ", "\t\r\n"] {
            let selector = sel(s);
            assert!(selector.is_empty());
            assert!(selector.matches(&labels(&[])));
            assert!(selector.matches(&labels(&[("a", "b")])));
        }
    }

    #[test]
    fn equals_and_double_equals_require_the_label_with_that_value() {
        for s in ["a=b", "a==b"] {
            let selector = sel(s);
            assert!(!selector.is_empty());
            assert!(selector.matches(&labels(&[("a", "b")])));
            assert!(!selector.matches(&labels(&[("a", "c")])));
            assert!(!selector.matches(&labels(&[])));
        }
    }

    #[test]
    fn not_equals_matches_other_values_and_a_missing_label() {
        let selector = sel("a!=b");
        assert!(!selector.matches(&labels(&[("a", "b")])));
        assert!(selector.matches(&labels(&[("a", "c")])));
        assert!(selector.matches(&labels(&[])));
    }

    #[test]
    fn in_requires_the_label_with_one_of_the_values() {
        let selector = sel("a in (b,c)");
        assert!(selector.matches(&labels(&[("a", "b")])));
        assert!(selector.matches(&labels(&[("a", "c")])));
        assert!(!selector.matches(&labels(&[("a", "d")])));
        assert!(!selector.matches(&labels(&[])));
    }

    #[test]
    fn notin_matches_other_values_and_a_missing_label() {
        let selector = sel("a notin (b,c)");
        assert!(!selector.matches(&labels(&[("a", "b")])));
        assert!(selector.matches(&labels(&[("a", "d")])));
        assert!(selector.matches(&labels(&[])));
    }

    #[test]
    fn a_bare_key_requires_the_label_and_a_bang_key_forbids_it() {
        assert!(sel("a").matches(&labels(&[("a", "")])));
        assert!(!sel("a").matches(&labels(&[("b", "")])));
        assert!(sel("!a").matches(&labels(&[("b", "")])));
        assert!(!sel("!a").matches(&labels(&[("a", "x")])));
        assert!(sel("! a").matches(&labels(&[])));
    }

    #[test]
    fn greater_and_less_than_compare_the_value_as_an_integer() {
        assert!(sel("a>1").matches(&labels(&[("a", "2")])));
        assert!(!sel("a>1").matches(&labels(&[("a", "1")])));
        assert!(sel("a<10").matches(&labels(&[("a", "9")])));
        assert!(!sel("a<10").matches(&labels(&[("a", "10")])));
        assert!(sel("a>1").matches(&labels(&[("a", "+5")])));
        assert!(sel("a<1").matches(&labels(&[("a", "-5")])));
    }

    #[test]
    fn greater_and_less_than_never_match_a_missing_or_non_integer_label() {
        assert!(!sel("a>1").matches(&labels(&[])));
        assert!(!sel("a>1").matches(&labels(&[("a", "x")])));
        assert!(!sel("a<1").matches(&labels(&[("a", "")])));
        assert!(!sel("a<1").matches(&labels(&[("a", "99999999999999999999")])));
    }

    #[test]
    fn commas_and_requirements_and_whitespace_is_tolerated_everywhere() {
        let selector = sel("  a  =  b ,\tc  in  ( x , y ) , !d , e  ");
        assert!(selector.matches(&labels(&[("a", "b"), ("c", "y"), ("e", "")])));
        assert!(!selector.matches(&labels(&[("a", "b"), ("c", "y")])));
        assert!(!selector.matches(&labels(&[("a", "b"), ("c", "y"), ("e", ""), ("d", "")])));
        assert!(!selector.matches(&labels(&[("a", "b"), ("c", "z"), ("e", "")])));
    }

    #[test]
    fn empty_values_in_sets_and_after_operators_are_the_empty_string() {
        assert!(sel("a in ()").matches(&labels(&[("a", "")])));
        assert!(!sel("a in ()").matches(&labels(&[("a", "x")])));
        assert!(sel("a=").matches(&labels(&[("a", "")])));
        assert!(sel("a=,b").matches(&labels(&[("a", ""), ("b", "")])));
        let selector = sel("x in (foo,,baz),y,z notin ()");
        assert!(selector.matches(&labels(&[("x", ""), ("y", "1")])));
        assert!(selector.matches(&labels(&[("x", "baz"), ("y", "1"), ("z", "q")])));
        assert!(!selector.matches(&labels(&[("x", "baz"), ("y", "1"), ("z", "")])));
        assert!(sel("a in (b,)").matches(&labels(&[("a", "")])));
        assert!(sel("a in (,b)").matches(&labels(&[("a", "")])));
    }

    #[test]
    fn in_and_notin_are_plain_identifiers_outside_the_operator_position() {
        let selector = sel("in in (in,notin)");
        assert!(selector.matches(&labels(&[("in", "notin")])));
        assert!(sel("notin").matches(&labels(&[("notin", "x")])));
    }

    #[test]
    fn prefixed_keys_are_accepted() {
        assert!(sel("example.com/app=web").matches(&labels(&[("example.com/app", "web")])));
    }

    #[test]
    fn a_nul_byte_ends_the_selector_after_whitespace_and_separates_tokens_elsewhere() {
        assert!(sel("a\0=b").matches(&labels(&[("a", "b")])));
        assert_eq!(
            err("a\0b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(err("a, \0b"), "found '', expected: identifier after ','");
        // Right after a symbol the NUL is swallowed with it, as in apimachinery's lexer.
        assert!(sel("a,\0b").matches(&labels(&[("a", ""), ("b", "")])));
        assert!(sel("a=b\0").matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn a_missing_operator_is_reported_with_the_list_of_binary_operators() {
        assert_eq!(
            err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
    }

    #[test]
    fn a_trailing_comma_needs_an_identifier_after_it() {
        assert_eq!(err("a,"), "found '', expected: identifier after ','");
        assert_eq!(err("a,,b"), "found ',', expected: identifier after ','");
    }

    #[test]
    fn a_selector_cannot_start_with_an_operator() {
        assert_eq!(err(","), "found ',', expected: !, identifier, or 'end of string'");
        assert_eq!(err("!=a"), "found '!=', expected: !, identifier, or 'end of string'");
        assert_eq!(err("(a)"), "found '(', expected: !, identifier, or 'end of string'");
    }

    #[test]
    fn anything_but_a_comma_after_a_requirement_is_refused() {
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(err("a in (b))"), "found ')', expected: ',' or 'end of string'");
    }

    #[test]
    fn set_syntax_errors_name_the_offending_token() {
        assert_eq!(err("a in b"), "unable to parse requirement: found 'b' expected: '('");
        assert_eq!(err("a in (b c)"), "unable to parse requirement: found 'c', expected: ',' or ')'");
        assert_eq!(err("a in ("), "unable to parse requirement: found '', expected: ',', ')' or identifier");
        assert_eq!(
            err("a in (=)"),
            "unable to parse requirement: found '=', expected: ',', ')' or identifier"
        );
        assert_eq!(err("a in (b,"), "unable to parse requirement: found '', expected: ',', or identifier");
        assert_eq!(err("a in (b,="), "unable to parse requirement: found '=', expected: ',', or identifier");
    }

    #[test]
    fn exact_match_needs_an_identifier_value() {
        assert_eq!(err("a=("), "unable to parse requirement: found '(', expected: identifier");
        assert_eq!(err("a>=1"), "unable to parse requirement: found '=', expected: identifier");
    }

    #[test]
    fn a_bang_needs_a_key_after_it() {
        assert_eq!(err("!"), "unable to parse requirement: found '', expected: identifier");
        assert_eq!(err("!!a"), "unable to parse requirement: found '!', expected: identifier");
    }

    #[test]
    fn an_invalid_key_is_reported_with_a_nil_field_path() {
        assert_eq!(
            err("-a=b"),
            format!("unable to parse requirement: <nil>: Invalid value: \"-a\": {NAME_PART_MSG}")
        );
        assert_eq!(
            err("Foo/a"),
            "unable to parse requirement: <nil>: Invalid value: \"Foo/a\": prefix part a lowercase RFC 1123 \
             subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end \
             with an alphanumeric character (e.g. 'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert_eq!(
            err("a/"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"a/\": name part must be non-empty; {NAME_PART_MSG}"
            )
        );
    }

    #[test]
    fn an_invalid_value_is_reported_under_its_index_and_key() {
        assert_eq!(
            err("a=-b"),
            format!("unable to parse requirement: values[0][a]: Invalid value: \"-b\": {VALUE_MSG}")
        );
        assert_eq!(
            err("a in (z_,b)"),
            format!("unable to parse requirement: values[1][a]: Invalid value: \"z_\": {VALUE_MSG}")
        );
        let long = "x".repeat(64);
        assert_eq!(
            err(&format!("a={long}")),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 bytes"
            )
        );
    }

    #[test]
    fn a_non_integer_gt_or_lt_value_is_refused() {
        assert_eq!(
            err("a>b"),
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value \
             must be an integer"
        );
    }

    #[test]
    fn several_requirement_errors_are_aggregated_in_brackets() {
        assert_eq!(
            err("a<b_"),
            format!(
                "unable to parse requirement: [values[0]: Invalid value: \"b_\": for 'Gt', 'Lt' operators, the \
                 value must be an integer, values[0][a]: Invalid value: \"b_\": {VALUE_MSG}]"
            )
        );
    }

    #[test]
    fn display_gives_the_canonical_form_sorted_by_key() {
        assert_eq!(
            sel("b in (y,x),a,!c,d==1,e!=2,f>3,g<4,h=5,i notin (q)").to_string(),
            "a,b in (x,y),!c,d==1,e!=2,f>3,g<4,h=5,i notin (q)"
        );
        assert_eq!(sel("").to_string(), "");
    }

    #[test]
    fn a_null_structured_selector_matches_nothing() {
        let selector = from_label_selector_json(&json!(null)).unwrap();
        assert!(!selector.is_empty());
        assert!(!selector.matches(&labels(&[])));
        assert!(!selector.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn a_structured_selector_without_requirements_matches_everything() {
        for v in [json!({}), json!({"matchLabels": {}, "matchExpressions": []}), json!({"matchLabels": null})]
        {
            let selector = from_label_selector_json(&v).unwrap();
            assert!(selector.is_empty());
            assert!(selector.matches(&labels(&[("a", "b")])));
        }
    }

    #[test]
    fn a_structured_selector_ands_match_labels_and_every_expression_operator() {
        let selector = from_label_selector_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": []},
            ],
        }))
        .unwrap();
        assert_eq!(selector.to_string(), "app=web,env notin (prod),!legacy,team,tier in (back,front)");
        assert!(selector.matches(&labels(&[("app", "web"), ("tier", "front"), ("team", "x")])));
        assert!(!selector.matches(&labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("team", "x"),
            ("env", "prod")
        ])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!selector.matches(&labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("team", "x"),
            ("legacy", "")
        ])));
        assert!(!selector.matches(&labels(&[("app", "db"), ("tier", "front"), ("team", "x")])));
    }

    #[test]
    fn a_structured_selector_refuses_unknown_operators_with_the_operator_quoted() {
        let e = from_label_selector_json(&json!({"matchExpressions": [{"key": "a", "operator": "Gt"}]}));
        assert_eq!(e.unwrap_err().to_string(), "\"Gt\" is not a valid label selector operator");
    }

    #[test]
    fn a_structured_selector_reports_requirement_errors_without_a_prefix() {
        let msg = |v| from_label_selector_json(&v).unwrap_err().to_string();
        assert_eq!(
            msg(json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            msg(json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]})),
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            msg(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["<b>"]}]})),
            format!(
                "[values: Invalid value: [\"\\u003cb\\u003e\"]: values set must be empty for exists and does not \
                 exist, values[0][a]: Invalid value: \"<b>\": {VALUE_MSG}]"
            )
        );
        assert_eq!(
            msg(json!({"matchLabels": {"-x": "y"}})),
            format!("key: Invalid value: \"-x\": {NAME_PART_MSG}")
        );
        assert_eq!(
            msg(json!({"matchLabels": {"x": "y z"}})),
            format!("values[0][x]: Invalid value: \"y z\": {VALUE_MSG}")
        );
    }

    #[test]
    fn a_structured_selector_of_the_wrong_shape_is_malformed() {
        let msg = |v| from_label_selector_json(&v).unwrap_err().to_string();
        assert_eq!(msg(json!("a=b")), "invalid label selector: must be an object");
        assert_eq!(msg(json!({"matchLabels": []})), "invalid label selector: matchLabels must be an object");
        assert_eq!(
            msg(json!({"matchLabels": {"a": 1}})),
            "invalid label selector: matchLabels[a] must be a string"
        );
        assert_eq!(
            msg(json!({"matchExpressions": {}})),
            "invalid label selector: matchExpressions must be an array"
        );
        assert_eq!(
            msg(json!({"matchExpressions": [1]})),
            "invalid label selector: matchExpressions[0] must be an object"
        );
        assert_eq!(
            msg(json!({"matchExpressions": [{"key": 1, "operator": "Exists"}]})),
            "invalid label selector: matchExpressions[0].key must be a string"
        );
        assert_eq!(
            msg(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": "b"}]})),
            "invalid label selector: matchExpressions[0].values must be an array"
        );
        assert_eq!(
            msg(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [true]}]})),
            "invalid label selector: matchExpressions[0].values[0] must be a string"
        );
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC*") {
            let _ = LabelSelector::parse(&s);
        }

        #[test]
        fn parsing_selector_like_text_never_panics(s in "[a-c!=<>(),\\- _in\\x00]{0,24}") {
            let _ = LabelSelector::parse(&s);
        }

        #[test]
        fn the_canonical_form_parses_back_to_the_same_selector(
            s in "[a-c!=<>(), 0-9]{0,24}|[a-c]( (in|notin) \\([a-c,]{0,6}\\))?"
        ) {
            if let Ok(selector) = LabelSelector::parse(&s) {
                prop_assert_eq!(LabelSelector::parse(&selector.to_string()), Ok(selector));
            }
        }
    }
}
