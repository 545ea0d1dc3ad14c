//! Kopf's namespace globs: `*` and `?` wildcards, comma-separated terms, `!` excludes. A leading
//! exclusion implies a `*` before it. Several patterns (repeated `-n`) are alternatives.

/// Whether `name` matches one pattern (comma-separated globs).
fn matches_one(pattern: &str, name: &str) -> bool {
    let terms: Vec<&str> = pattern.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
    let Some(first) = terms.first() else { return false };
    let mut included = if first.starts_with('!') { true } else { glob(first, name) };
    for (i, term) in terms.iter().enumerate() {
        if i == 0 && !term.starts_with('!') {
            continue;
        }
        match term.strip_prefix('!') {
            Some(negated) if glob(negated, name) => included = false,
            Some(_) => {}
            None if glob(term, name) => included = true,
            None => {}
        }
    }
    included
}

/// Whether `name` matches any of the patterns.
pub(crate) fn matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| matches_one(p, name))
}

/// `fnmatch` with `*` and `?`.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str], name: &str) -> bool {
        matches(&patterns.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(), name)
    }

    #[test]
    fn globs_include_exclude_and_combine_like_kopf() {
        assert!(m(&["default"], "default") && !m(&["default"], "other"));
        assert!(m(&["team-*"], "team-a") && !m(&["team-*"], "teams"));
        assert!(
            m(&["!kube-*"], "default") && !m(&["!kube-*"], "kube-system"),
            "a leading exclusion implies *"
        );
        assert!(m(&["team-*,!team-b"], "team-a") && !m(&["team-*,!team-b"], "team-b"));
        assert!(m(&["a?c"], "abc") && !m(&["a?c"], "abbc"));
        assert!(m(&["x", "y*"], "yes"), "patterns are alternatives");
    }
}
