//! The `Accept` header, read as the real server's content negotiation reads it: a list of media
//! ranges, most preferred first (by `q`, then in the order given), each with its parameters —
//! `as`, `g` and `v` name a conversion (`as=Table;g=meta.k8s.io;v=v1`, `as=APIGroupDiscoveryList;…`).
//! The fake speaks JSON only, so ranges for protobuf, CBOR or YAML are passed over.

/// One media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MediaRange<'a> {
    /// `type/subtype`, e.g. `application/json` or `*/*`.
    pub(crate) essence: &'a str,
    params: Vec<(&'a str, &'a str)>,
    quality: u16,
}

impl MediaRange<'_> {
    /// A parameter's value (names are case-insensitive).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// Whether the range admits JSON.
    pub(crate) fn is_json(&self) -> bool {
        ["application/json", "application/*", "*/*"].iter().any(|e| self.essence.eq_ignore_ascii_case(e))
    }

    /// The conversion the range asks for: `(as, g, v)`, if it names one.
    pub(crate) fn conversion(&self) -> Option<(&str, &str, &str)> {
        Some((self.param("as")?, self.param("g").unwrap_or_default(), self.param("v").unwrap_or_default()))
    }
}

/// A parsed `Accept` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Accept<'a> {
    ranges: Vec<MediaRange<'a>>,
    /// Whether the header named anything (an absent or blank header accepts anything).
    given: bool,
}

impl<'a> Accept<'a> {
    /// Parses a header value; an absent or empty header accepts anything.
    pub(crate) fn parse(header: &'a str) -> Self {
        let mut ranges: Vec<MediaRange<'a>> = header
            .split(',')
            .filter_map(|clause| {
                let mut parts = clause.split(';').map(str::trim);
                let essence = parts.next().filter(|e| !e.is_empty())?;
                let mut params = Vec::new();
                let mut quality = 1000;
                for part in parts {
                    let Some((key, value)) = part.split_once('=') else { continue };
                    let (key, value) = (key.trim(), value.trim().trim_matches('"'));
                    if key.eq_ignore_ascii_case("q") {
                        quality = value.parse::<f32>().map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u16);
                    } else {
                        params.push((key, value));
                    }
                }
                Some(MediaRange { essence, params, quality })
            })
            .filter(|r| r.quality > 0)
            .collect();
        ranges.sort_by_key(|r| std::cmp::Reverse(r.quality));
        Self { ranges, given: !header.trim().is_empty() }
    }

    /// The `Accept` header of a request.
    pub(crate) fn of(headers: &'a http::HeaderMap) -> Self {
        Self::parse(headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default())
    }

    /// The ranges that admit JSON, most preferred first.
    pub(crate) fn json_ranges(&self) -> impl Iterator<Item = &MediaRange<'a>> {
        self.ranges.iter().filter(|r| r.is_json())
    }

    /// Whether plain JSON (no conversion) is acceptable.
    pub(crate) fn allows_json(&self) -> bool {
        !self.given || self.json_ranges().any(|r| r.param("as").is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_headers_name_the_table_first_and_plain_json_last() {
        let accept = Accept::parse(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        );
        let first = accept.json_ranges().next().unwrap();
        assert_eq!(first.conversion(), Some(("Table", "meta.k8s.io", "v1")));
        assert!(accept.allows_json());
    }

    #[test]
    fn protobuf_only_headers_do_not_allow_json_and_quality_orders_ranges() {
        assert!(!Accept::parse("application/com.github.proto-openapi.spec.v2@v1.0+protobuf").allows_json());
        assert!(Accept::parse("").allows_json());
        let accept = Accept::parse("application/json;q=0.5,application/json;as=Table;g=meta.k8s.io;v=v1");
        assert_eq!(accept.json_ranges().next().unwrap().param("as"), Some("Table"));
        assert!(!Accept::parse("application/json;q=0").allows_json());
    }
}
