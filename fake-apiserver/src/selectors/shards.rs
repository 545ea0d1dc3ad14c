//! Shard selectors: the `?shardSelector=` parameter of sharded list and watch (Kubernetes 1.36,
//! KEP-5866, feature gate `ShardedListAndWatch`).
//!
//! The syntax is a small part of CEL: one or more `shardRange(<field>, '<start>', '<end>')` calls
//! joined by `||`, parentheses allowed, whitespace free. The field is `object.metadata.uid` or
//! `object.metadata.namespace` — the same one in every range. The server hashes the field's value
//! with 64-bit FNV-1a and keeps the objects whose hash `h` has `start <= h < end` for some range.
//! Bounds are string literals of `0x` and exactly 16 lowercase hex digits; the only other form is
//! `0x10000000000000000` (2^64), the end of the whole space. Anything else is refused, as
//! k8s.io/apiserver's `sharding.Parse` refuses it; the error's text is what follows
//! `invalid shard selector: ` in the server's message.
//!
//! [`ShardSelector`]'s `Display` prints the canonical form the server echoes in
//! `metadata.shardInfo.selector` (ranges joined by ` || `, no parentheses); parsing that text gives
//! the same selector back.

use std::fmt;

/// The FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// The FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The end of the whole hash space, 2^64.
pub const SHARD_SPACE_END: u128 = 1 << 64;

/// 64-bit FNV-1a of `bytes`, the hash the API server shards by.
///
/// ```
/// assert_eq!(fake_apiserver::fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(fake_apiserver::fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
/// ```
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME))
}

/// The object field a shard selector hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShardField {
    /// `object.metadata.uid`.
    Uid,
    /// `object.metadata.namespace` (empty for cluster-scoped objects).
    Namespace,
}

impl ShardField {
    /// The CEL path: `object.metadata.uid` or `object.metadata.namespace`.
    pub fn path(self) -> &'static str {
        match self {
            Self::Uid => "object.metadata.uid",
            Self::Namespace => "object.metadata.namespace",
        }
    }

    fn from_path(path: &str) -> Option<Self> {
        match path {
            "object.metadata.uid" => Some(Self::Uid),
            "object.metadata.namespace" => Some(Self::Namespace),
            _ => None,
        }
    }
}

/// A half-open range `[start, end)` of the hash space; `end` may be 2^64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardRange {
    start: u64,
    end: u128,
}

impl ShardRange {
    /// The range `[start, end)`, or `None` unless `start < end <= 2^64`.
    pub fn new(start: u64, end: u128) -> Option<Self> {
        (u128::from(start) < end && end <= SHARD_SPACE_END).then_some(Self { start, end })
    }

    /// The inclusive lower bound.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The exclusive upper bound (at most 2^64).
    pub fn end(&self) -> u128 {
        self.end
    }

    /// Whether the hash is in the range.
    pub fn contains(&self, hash: u64) -> bool {
        self.start <= hash && u128::from(hash) < self.end
    }
}

/// A parsed `shardSelector`: ranges of one field's hash, OR-ed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardSelector {
    field: ShardField,
    ranges: Vec<ShardRange>,
}

/// Why a shard selector was refused; `Display` gives the server's text after
/// `invalid shard selector: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardSelectorError {
    /// Only whitespace.
    #[error("empty shard selector is not allowed; omit the parameter for unfiltered lists")]
    Empty,
    /// Not CEL (or a part of CEL this server does not take apart).
    #[error("CEL parse error: {0}")]
    Syntax(String),
    /// A call of anything but `shardRange` (or an operator other than `||`).
    #[error("unsupported function {0:?}; only shardRange() and || are allowed")]
    Function(String),
    /// A top-level term that is not a call.
    #[error("unexpected expression {0}; expected shardRange() call or || operator")]
    Expression(String),
    /// `shardRange` with other than three arguments.
    #[error("shardRange() requires exactly 3 arguments, got {0}")]
    Arity(usize),
    /// The first argument is not a dotted path.
    #[error("shardRange() first argument: expected field path (e.g. object.metadata.uid), got {0}")]
    NotAPath(String),
    /// A path other than the two supported ones.
    #[error("unsupported field path {0:?}; supported: object.metadata.uid, object.metadata.namespace")]
    UnknownField(String),
    /// A bound that is not a string literal.
    #[error("{name} must be a string literal (e.g. '0xff'), got {got}")]
    NotALiteral {
        /// `hexStart` or `hexEnd`.
        name: &'static str,
        /// What was there instead.
        got: String,
    },
    /// A bound without the `0x` prefix.
    #[error("{name} must have '0x' prefix, got {value:?}")]
    Prefix {
        /// `hexStart` or `hexEnd`.
        name: &'static str,
        /// The literal.
        value: String,
    },
    /// `0x` and nothing after it.
    #[error("{name}: hex value is required after '0x'")]
    NoDigits {
        /// `hexStart` or `hexEnd`.
        name: &'static str,
    },
    /// More than 17 digits.
    #[error("{name}: hex value too long ({len} chars, max 17): {digits:?}")]
    TooLong {
        /// `hexStart` or `hexEnd`.
        name: &'static str,
        /// How many digits.
        len: usize,
        /// The digits.
        digits: String,
    },
    /// A character other than `0-9a-f` (upper case included).
    #[error("{name}: invalid hex character {character:?} in {value:?}")]
    Digit {
        /// `hexStart` or `hexEnd`.
        name: &'static str,
        /// The first bad character.
        character: String,
        /// The literal.
        value: String,
    },
    /// 17 digits that are not 2^64.
    #[error("{name}: 17-digit hex value must be '0x10000000000000000' (2^64), got {value:?}")]
    NotTheEnd {
        /// `hexStart` or `hexEnd`.
        name: &'static str,
        /// The literal.
        value: String,
    },
    /// Fewer than 16 digits.
    #[error("{name} must be a 0x-prefixed 16-digit hex value, got {value:?} (did you mean {padded:?}?)")]
    Unpadded {
        /// `hexStart` or `hexEnd`.
        name: &'static str,
        /// The literal.
        value: String,
        /// The literal padded to 16 digits.
        padded: String,
    },
    /// `start >= end`.
    #[error("shard range start {start} must be less than end {end}")]
    Order {
        /// The start literal.
        start: String,
        /// The end literal.
        end: String,
    },
    /// Ranges over different fields.
    #[error("all shard ranges must use the same field, got {0:?} and {1:?}")]
    MixedFields(String, String),
}

impl ShardSelector {
    /// A selector of `field`'s hash in any of `ranges`, or `None` if there are no ranges.
    pub fn new(field: ShardField, ranges: Vec<ShardRange>) -> Option<Self> {
        (!ranges.is_empty()).then_some(Self { field, ranges })
    }

    /// Parses the `shardSelector` parameter strictly.
    ///
    /// # Errors
    /// A [`ShardSelectorError`] saying what is wrong, as the server's 400 message does.
    pub fn parse(text: &str) -> Result<Self, ShardSelectorError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ShardSelectorError::Empty);
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens: &tokens, at: 0 };
        let expr = parser.or()?;
        if let Some(token) = parser.peek() {
            return Err(ShardSelectorError::Syntax(format!(
                "unexpected {} after the expression",
                token.describe()
            )));
        }
        let mut ranges = Vec::new();
        let mut field: Option<(ShardField, String)> = None;
        collect(&expr, &mut |(f, path, range)| {
            match &field {
                Some((first, first_path)) if *first != f => {
                    return Err(ShardSelectorError::MixedFields(first_path.clone(), path));
                }
                Some(_) => {}
                None => field = Some((f, path)),
            }
            ranges.push(range);
            Ok(())
        })?;
        let (field, _) = field.ok_or(ShardSelectorError::Empty)?;
        Ok(Self { field, ranges })
    }

    /// The hashed field.
    pub fn field(&self) -> ShardField {
        self.field
    }

    /// The ranges, in the selector's order.
    pub fn ranges(&self) -> &[ShardRange] {
        &self.ranges
    }

    /// Whether a hash is in any range.
    pub fn contains(&self, hash: u64) -> bool {
        self.ranges.iter().any(|r| r.contains(hash))
    }

    /// Whether an object with this uid and namespace is selected.
    pub fn matches(&self, uid: &str, namespace: &str) -> bool {
        let value = match self.field {
            ShardField::Uid => uid,
            ShardField::Namespace => namespace,
        };
        self.contains(fnv1a_64(value.as_bytes()))
    }
}

impl fmt::Display for ShardSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, range) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(" || ")?;
            }
            write!(f, "shardRange({}, '0x{:016x}', '0x{:016x}')", self.field.path(), range.start, range.end)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ShardSelector {
    type Err = ShardSelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// --- the CEL subset -------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    Number(String),
    Dot,
    Comma,
    Open,
    Close,
    Or,
    And,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Ident(s) => format!("identifier {s:?}"),
            Self::Str(s) => format!("string '{s}'"),
            Self::Number(s) => format!("number {s}"),
            Self::Dot => "'.'".to_owned(),
            Self::Comma => "','".to_owned(),
            Self::Open => "'('".to_owned(),
            Self::Close => "')'".to_owned(),
            Self::Or => "'||'".to_owned(),
            Self::And => "'&&'".to_owned(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, ShardSelectorError> {
    let syntax = |m: String| ShardSelectorError::Syntax(m);
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '.' => tokens.push(Token::Dot),
            ',' => tokens.push(Token::Comma),
            '(' => tokens.push(Token::Open),
            ')' => tokens.push(Token::Close),
            '|' | '&' => {
                if chars.next_if(|(_, n)| *n == c).is_none() {
                    return Err(syntax(format!("unexpected {c:?} at position {at}")));
                }
                tokens.push(if c == '|' { Token::Or } else { Token::And });
            }
            '\'' | '"' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, q)) if q == c => break,
                        Some((pos, '\\')) => {
                            return Err(syntax(format!(
                                "escape sequences are not supported in shard selector literals (position {pos})"
                            )));
                        }
                        Some((_, other)) => value.push(other),
                        None => return Err(syntax(format!("unterminated string literal at position {at}"))),
                    }
                }
                tokens.push(Token::Str(value));
            }
            c if c.is_ascii_digit() => {
                let mut value = String::from(c);
                while let Some((_, d)) = chars.next_if(|(_, d)| d.is_ascii_alphanumeric() || *d == '.') {
                    value.push(d);
                }
                tokens.push(Token::Number(value));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut value = String::from(c);
                while let Some((_, d)) = chars.next_if(|(_, d)| d.is_ascii_alphanumeric() || *d == '_') {
                    value.push(d);
                }
                tokens.push(Token::Ident(value));
            }
            other => return Err(syntax(format!("unexpected {other:?} at position {at}"))),
        }
    }
    Ok(tokens)
}

/// An expression of the subset: a path, a literal, a call, or an OR.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Path(String),
    Str(String),
    Number(String),
    Call(String, Vec<Expr>),
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
}

impl Expr {
    fn describe(&self) -> String {
        match self {
            Self::Path(p) => format!("field path {p}"),
            Self::Str(s) => format!("string literal '{s}'"),
            Self::Number(n) => format!("number literal {n}"),
            Self::Call(name, _) => format!("call of {name}()"),
            Self::Or(..) => "|| expression".to_owned(),
            Self::And(..) => "&& expression".to_owned(),
        }
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expect(&mut self, want: &Token) -> Result<(), ShardSelectorError> {
        match self.next() {
            Some(t) if t == *want => Ok(()),
            Some(t) => Err(ShardSelectorError::Syntax(format!(
                "expected {}, found {}",
                want.describe(),
                t.describe()
            ))),
            None => Err(ShardSelectorError::Syntax(format!("expected {}, found the end", want.describe()))),
        }
    }

    /// `and ('||' and)*`, left-associative.
    fn or(&mut self) -> Result<Expr, ShardSelectorError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `primary ('&&' primary)*` — parsed so that it can be refused by name, as the server does.
    fn and(&mut self) -> Result<Expr, ShardSelectorError> {
        let mut left = self.primary()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            let right = self.primary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, ShardSelectorError> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                self.expect(&Token::Close)?;
                Ok(inner)
            }
            Some(Token::Str(s)) => Ok(Expr::Str(s)),
            Some(Token::Number(n)) => Ok(Expr::Number(n)),
            Some(Token::Ident(first)) => {
                let mut path = first;
                while self.peek() == Some(&Token::Dot) {
                    self.at += 1;
                    match self.next() {
                        Some(Token::Ident(part)) => {
                            path.push('.');
                            path.push_str(&part);
                        }
                        Some(t) => {
                            return Err(ShardSelectorError::Syntax(format!(
                                "expected a field name after '.', found {}",
                                t.describe()
                            )));
                        }
                        None => {
                            return Err(ShardSelectorError::Syntax(
                                "expected a field name after '.', found the end".to_owned(),
                            ));
                        }
                    }
                }
                if self.peek() != Some(&Token::Open) {
                    return Ok(Expr::Path(path));
                }
                if path.contains('.') {
                    return Err(ShardSelectorError::Syntax(format!(
                        "member calls are not supported: {path}()"
                    )));
                }
                self.at += 1;
                let mut args = Vec::new();
                if self.peek() == Some(&Token::Close) {
                    self.at += 1;
                    return Ok(Expr::Call(path, args));
                }
                loop {
                    args.push(self.or()?);
                    match self.next() {
                        Some(Token::Comma) => {}
                        Some(Token::Close) => break,
                        Some(t) => {
                            return Err(ShardSelectorError::Syntax(format!(
                                "expected ',' or ')' in the arguments of {path}(), found {}",
                                t.describe()
                            )));
                        }
                        None => {
                            return Err(ShardSelectorError::Syntax(format!(
                                "unterminated arguments of {path}()"
                            )));
                        }
                    }
                }
                Ok(Expr::Call(path, args))
            }
            Some(t) => Err(ShardSelectorError::Syntax(format!("unexpected {}", t.describe()))),
            None => Err(ShardSelectorError::Syntax("unexpected end of the expression".to_owned())),
        }
    }
}

/// Walks `||` chains down to the `shardRange` calls, handing each range to `sink` in order.
fn collect(
    expr: &Expr,
    sink: &mut impl FnMut((ShardField, String, ShardRange)) -> Result<(), ShardSelectorError>,
) -> Result<(), ShardSelectorError> {
    match expr {
        Expr::Or(left, right) => {
            collect(left, sink)?;
            collect(right, sink)
        }
        Expr::And(..) => Err(ShardSelectorError::Function("_&&_".to_owned())),
        Expr::Call(name, args) if name == "shardRange" => sink(shard_range(args)?),
        Expr::Call(name, _) => Err(ShardSelectorError::Function(name.clone())),
        other => Err(ShardSelectorError::Expression(other.describe())),
    }
}

fn shard_range(args: &[Expr]) -> Result<(ShardField, String, ShardRange), ShardSelectorError> {
    let [path, start, end] = args else {
        return Err(ShardSelectorError::Arity(args.len()));
    };
    let Expr::Path(path) = path else {
        return Err(ShardSelectorError::NotAPath(path.describe()));
    };
    let field = ShardField::from_path(path).ok_or_else(|| ShardSelectorError::UnknownField(path.clone()))?;
    let (start_text, start) = bound(start, "hexStart")?;
    let (end_text, end) = bound(end, "hexEnd")?;
    let start = u64::try_from(start)
        .ok()
        .and_then(|s| ShardRange::new(s, end))
        .ok_or(ShardSelectorError::Order { start: start_text, end: end_text })?;
    Ok((field, path.clone(), start))
}

/// A bound literal: `0x` and 16 lowercase hex digits, or `0x10000000000000000`.
fn bound(expr: &Expr, name: &'static str) -> Result<(String, u128), ShardSelectorError> {
    let Expr::Str(value) = expr else {
        return Err(ShardSelectorError::NotALiteral { name, got: expr.describe() });
    };
    let Some(digits) = value.strip_prefix("0x") else {
        return Err(ShardSelectorError::Prefix { name, value: value.clone() });
    };
    if digits.is_empty() {
        return Err(ShardSelectorError::NoDigits { name });
    }
    let len = digits.chars().count();
    if len > 17 {
        return Err(ShardSelectorError::TooLong { name, len, digits: digits.to_owned() });
    }
    if let Some(bad) = digits.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(ShardSelectorError::Digit { name, character: bad.to_string(), value: value.clone() });
    }
    match len {
        17 if digits == "10000000000000000" => Ok((value.clone(), SHARD_SPACE_END)),
        17 => Err(ShardSelectorError::NotTheEnd { name, value: value.clone() }),
        16 => {
            let parsed = u64::from_str_radix(digits, 16)
                .map_err(|e| ShardSelectorError::Syntax(format!("{name}: {e}")))?;
            Ok((value.clone(), u128::from(parsed)))
        }
        _ => Err(ShardSelectorError::Unpadded {
            name,
            value: value.clone(),
            padded: format!("0x{digits:0>16}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HALF: &str = "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')";

    fn err(text: &str) -> String {
        ShardSelector::parse(text).expect_err(text).to_string()
    }

    #[test]
    fn fnv1a_64_matches_the_published_test_vectors() {
        // From the FNV reference test suite (Fowler/Noll/Vo, "FNV-1a 64-bit" column).
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"b"), 0xaf63_df4c_8601_f1a5);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a_64(b"chongo was here!\n"), 0x4681_0940_eff5_f915);
    }

    #[test]
    fn a_single_range_parses_and_prints_back_unchanged() {
        let s = ShardSelector::parse(HALF).unwrap();
        assert_eq!(s.field(), ShardField::Uid);
        assert_eq!(s.ranges(), &[ShardRange::new(0, 1 << 63).unwrap()]);
        assert_eq!(s.to_string(), HALF);
    }

    #[test]
    fn ranges_joined_by_or_keep_their_order_and_print_without_parentheses() {
        let text = "( shardRange(object.metadata.namespace,'0xc000000000000000',\"0x10000000000000000\") ) ||\n\
                    shardRange( object . metadata . namespace , '0x0000000000000000' , '0x4000000000000000' )";
        let s = ShardSelector::parse(text).unwrap();
        assert_eq!(s.field(), ShardField::Namespace);
        assert_eq!(
            s.to_string(),
            "shardRange(object.metadata.namespace, '0xc000000000000000', '0x10000000000000000') || \
             shardRange(object.metadata.namespace, '0x0000000000000000', '0x4000000000000000')"
        );
    }

    #[test]
    fn ranges_are_half_open() {
        let s = ShardSelector::parse(
            "shardRange(object.metadata.uid, '0x0000000000000010', '0x0000000000000020')",
        )
        .unwrap();
        assert!(!s.contains(0x0f));
        assert!(s.contains(0x10));
        assert!(s.contains(0x1f));
        assert!(!s.contains(0x20));
        let top = ShardSelector::parse(
            "shardRange(object.metadata.uid, '0xffffffffffffffff', '0x10000000000000000')",
        )
        .unwrap();
        assert!(top.contains(u64::MAX));
        assert!(!top.contains(u64::MAX - 1));
    }

    #[test]
    fn the_uid_or_the_namespace_is_hashed_as_chosen() {
        let uid = "0b6a2c4e-1f3d-4e5a-9b7c-8d9e0f1a2b3c";
        let h = fnv1a_64(uid.as_bytes());
        let around = |field: &str, h: u64| {
            format!("shardRange({field}, '0x{h:016x}', '0x{:016x}')", u128::from(h) + 1)
        };
        let by_uid = ShardSelector::parse(&around("object.metadata.uid", h)).unwrap();
        assert!(by_uid.matches(uid, "default"));
        assert!(!by_uid.matches("another-uid", "default"));
        let by_ns = ShardSelector::parse(&around("object.metadata.namespace", fnv1a_64(b"default"))).unwrap();
        assert!(by_ns.matches(uid, "default"));
        assert!(by_ns.matches("another-uid", "default"));
        assert!(!by_ns.matches(uid, "kube-system"));
        // Cluster-scoped objects have no namespace: the empty string's hash is the offset basis.
        let cluster = ShardSelector::parse(&around("object.metadata.namespace", FNV_OFFSET)).unwrap();
        assert!(cluster.matches(uid, ""));
    }

    #[test]
    fn malformed_selectors_are_refused_with_the_servers_reason() {
        assert_eq!(
            err("   "),
            "empty shard selector is not allowed; omit the parameter for unfiltered lists"
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, '0x0', '0x8000000000000000')"),
            "hexStart must be a 0x-prefixed 16-digit hex value, got \"0x0\" (did you mean \"0x0000000000000000\"?)"
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000zz0')"),
            "hexEnd: invalid hex character \"z\" in \"0x8000000000000zz0\""
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000ABC')"),
            "hexEnd: invalid hex character \"A\" in \"0x8000000000000ABC\""
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, '0000000000000000', '0x8000000000000000')"),
            "hexStart must have '0x' prefix, got \"0000000000000000\""
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, '0x', '0x8000000000000000')"),
            "hexStart: hex value is required after '0x'"
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, '0x0000000000000000', '0x20000000000000000')"),
            "hexEnd: 17-digit hex value must be '0x10000000000000000' (2^64), got \"0x20000000000000000\""
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, '0x0000000000000000', '0x100000000000000000')"),
            "hexEnd: hex value too long (18 chars, max 17): \"100000000000000000\""
        );
        assert_eq!(
            err("shardRange(object.metadata.name, '0x0000000000000000', '0x8000000000000000')"),
            "unsupported field path \"object.metadata.name\"; supported: object.metadata.uid, object.metadata.namespace"
        );
        assert_eq!(
            err("shardRange(metadata.uid, '0x0000000000000000', '0x8000000000000000')"),
            "unsupported field path \"metadata.uid\"; supported: object.metadata.uid, object.metadata.namespace"
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, '0x8000000000000000', '0x8000000000000000')"),
            "shard range start 0x8000000000000000 must be less than end 0x8000000000000000"
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, '0x10000000000000000', '0x10000000000000000')"),
            "shard range start 0x10000000000000000 must be less than end 0x10000000000000000"
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, '0x0000000000000000')"),
            "shardRange() requires exactly 3 arguments, got 2"
        );
        assert_eq!(
            err(&format!("{HALF} && {HALF}")),
            "unsupported function \"_&&_\"; only shardRange() and || are allowed"
        );
        assert_eq!(
            err("hashRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')"),
            "unsupported function \"hashRange\"; only shardRange() and || are allowed"
        );
        assert_eq!(
            err(&format!(
                "{HALF} || shardRange(object.metadata.namespace, '0x8000000000000000', '0x10000000000000000')"
            )),
            "all shard ranges must use the same field, got \"object.metadata.uid\" and \"object.metadata.namespace\""
        );
        assert_eq!(
            err("shardRange(object.metadata.uid, 0, '0x8000000000000000')"),
            "hexStart must be a string literal (e.g. '0xff'), got number literal 0"
        );
        assert!(err(&format!("{HALF} ||")).starts_with("CEL parse error: "));
        assert!(err(&format!("{HALF} | {HALF}")).starts_with("CEL parse error: "));
        assert!(
            err("shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000'")
                .starts_with("CEL parse error: ")
        );
        assert!(err("'0x0000000000000000'").starts_with("unexpected expression"));
    }

    fn range() -> impl Strategy<Value = ShardRange> {
        (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(a, b, to_end)| {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let end = if to_end || lo == hi { SHARD_SPACE_END } else { u128::from(hi) };
            ShardRange::new(lo, end).expect("lo < end")
        })
    }

    fn selector() -> impl Strategy<Value = ShardSelector> {
        (any::<bool>(), prop::collection::vec(range(), 1..5)).prop_map(|(by_uid, ranges)| {
            let field = if by_uid { ShardField::Uid } else { ShardField::Namespace };
            ShardSelector::new(field, ranges).expect("at least one range")
        })
    }

    proptest! {
        #[test]
        fn printing_then_parsing_gives_the_same_selector(s in selector()) {
            let printed = s.to_string();
            let parsed = ShardSelector::parse(&printed).unwrap();
            prop_assert_eq!(&parsed, &s);
            prop_assert_eq!(parsed.to_string(), printed);
        }

        #[test]
        fn a_hash_is_selected_exactly_when_a_range_holds_it(s in selector(), hash in any::<u64>()) {
            let expected = s.ranges().iter().any(|r| r.start() <= hash && u128::from(hash) < r.end());
            prop_assert_eq!(s.contains(hash), expected);
        }

        #[test]
        fn junk_never_panics_the_parser(text in ".{0,80}") {
            let _ = ShardSelector::parse(&text);
        }
    }
}
