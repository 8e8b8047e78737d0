//! Exposed names: `{prefix}{separator}{name}` for tools and prompts, `{prefix}+{uri}` for
//! resources, both reversible by known prefix (never by splitting on a separator).

use sha2::{Digest, Sha256};

/// The strictest real client accepts `^[a-zA-Z0-9_-]{1,64}$`.
fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The name a client sees for `name` of a target with `prefix`. Conforming names are joined as
/// they are; others are sanitized and shortened to `max_len` with a hash suffix of the full
/// original, so the result is deterministic and two originals never share it.
pub fn expose(prefix: &str, separator: &str, name: &str, max_len: usize) -> String {
    let joined = if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}{separator}{name}")
    };
    if !joined.is_empty() && joined.len() <= max_len && joined.chars().all(valid_char) {
        return joined;
    }
    let hash = hex::encode(&Sha256::digest(joined.as_bytes())[..4]);
    let sanitized: String = joined
        .chars()
        .map(|c| if valid_char(c) { c } else { '_' })
        .collect();
    // Keep the prefix intact when possible so the exposed name still says where it comes from.
    let keep = max_len.saturating_sub(hash.len() + 1);
    let head: String = sanitized.chars().take(keep).collect();
    format!("{head}_{hash}")
}

/// Finds which prefix an exposed tool/prompt name starts with: the longest `{prefix}{sep}` that
/// matches wins, and an unprefixed target (empty prefix) matches anything left over.
pub fn match_prefix<'a, I>(exposed: &str, separator: &str, prefixes: I) -> Option<(&'a str, String)>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(&'a str, String)> = None;
    for prefix in prefixes {
        let rest = if prefix.is_empty() {
            Some(exposed)
        } else {
            exposed
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix(separator))
        };
        if let Some(rest) = rest
            && !rest.is_empty()
            && best.as_ref().is_none_or(|(p, _)| prefix.len() > p.len())
        {
            best = Some((prefix, rest.to_string()));
        }
    }
    best
}

/// `{prefix}+{uri}`; an empty prefix leaves the URI unchanged.
pub fn expose_uri(prefix: &str, uri: &str) -> String {
    if prefix.is_empty() {
        uri.to_string()
    } else {
        format!("{prefix}+{uri}")
    }
}

/// Splits `{prefix}+{uri}` for one of `prefixes` (longest match); an unprefixed target takes
/// URIs that match no prefix.
pub fn match_uri_prefix<'a, I>(exposed: &str, prefixes: I) -> Option<(&'a str, String)>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(&'a str, String)> = None;
    for prefix in prefixes {
        let rest = if prefix.is_empty() {
            Some(exposed)
        } else {
            exposed
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('+'))
        };
        if let Some(rest) = rest
            && best.as_ref().is_none_or(|(p, _)| prefix.len() > p.len())
        {
            best = Some((prefix, rest.to_string()));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conforming_names_are_joined() {
        assert_eq!(
            expose("github", "__", "create_issue", 64),
            "github__create_issue"
        );
        assert_eq!(expose("", "__", "echo", 64), "echo");
    }

    #[test]
    fn long_or_odd_names_are_shortened_deterministically() {
        let long = "x".repeat(80);
        let a = expose("github", "__", &long, 64);
        assert_eq!(a.len(), 64);
        assert!(a.starts_with("github__xxx"));
        assert_eq!(a, expose("github", "__", &long, 64), "deterministic");
        assert_ne!(
            a,
            expose("github", "__", &"x".repeat(81), 64),
            "distinct originals"
        );
        let dotted = expose("fs", "__", "read.file", 64);
        assert!(dotted.chars().all(valid_char), "{dotted}");
        assert_ne!(
            dotted,
            expose("fs", "__", "read_file", 64),
            "a sanitized name never collides with a real one"
        );
    }

    #[test]
    fn prefixes_match_longest_first() {
        let prefixes = ["git", "git__hub", ""];
        assert_eq!(
            match_prefix("git__hub__x", "__", prefixes),
            Some(("git__hub", "x".to_string()))
        );
        assert_eq!(
            match_prefix("git__status", "__", prefixes),
            Some(("git", "status".into()))
        );
        assert_eq!(
            match_prefix("plain", "__", prefixes),
            Some(("", "plain".into()))
        );
        assert_eq!(match_prefix("plain", "__", ["a", "b"]), None);
        assert_eq!(match_prefix("a__", "__", ["a"]), None, "empty remainder");
    }

    #[test]
    fn uris_round_trip() {
        let u = expose_uri("docs", "file:///a+b.txt");
        assert_eq!(u, "docs+file:///a+b.txt");
        assert_eq!(
            match_uri_prefix(&u, ["docs", "doc"]),
            Some(("docs", "file:///a+b.txt".into()))
        );
        assert_eq!(
            match_uri_prefix("test://x", ["", "docs"]),
            Some(("", "test://x".into()))
        );
        assert_eq!(match_uri_prefix("other+x://y", ["docs"]), None);
    }
}
