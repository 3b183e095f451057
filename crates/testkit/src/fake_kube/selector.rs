//! Server-side label selectors, as the API server parses them.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector (`a=b,c!=d,e,!f,g in (h,i),j notin (k)`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    terms: Vec<Term>,
}

impl LabelSelector {
    /// Parses a selector; the empty selector matches everything.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for raw in split_terms(text) {
            let term = raw.trim();
            if term.is_empty() {
                continue;
            }
            let parsed = if let Some((key, rest)) = split_word(term, " notin ") {
                Term::NotIn(key, parse_set(rest)?)
            } else if let Some((key, rest)) = split_word(term, " in ") {
                Term::In(key, parse_set(rest)?)
            } else if let Some((k, v)) = term.split_once("!=") {
                Term::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once("==") {
                Term::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = term.split_once('=') {
                Term::Equals(k.trim().into(), v.trim().into())
            } else if let Some(k) = term.strip_prefix('!') {
                Term::NotExists(k.trim().into())
            } else {
                Term::Exists(term.into())
            };
            let key = match &parsed {
                Term::Exists(k)
                | Term::NotExists(k)
                | Term::Equals(k, _)
                | Term::NotEquals(k, _)
                | Term::In(k, _)
                | Term::NotIn(k, _) => k,
            };
            if key.is_empty() || key.contains(' ') {
                return Err(format!("unable to parse requirement: {term:?}"));
            }
            terms.push(parsed);
        }
        Ok(Self { terms })
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.terms.iter().all(|t| match t {
            Term::Exists(k) => get(k).is_some(),
            Term::NotExists(k) => get(k).is_none(),
            Term::Equals(k, v) => get(k) == Some(v.as_str()),
            Term::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Term::In(k, set) => get(k).is_some_and(|v| set.iter().any(|s| s == v)),
            Term::NotIn(k, set) => get(k).is_none_or(|v| set.iter().all(|s| s != v)),
        })
    }
}

fn split_word<'a>(term: &'a str, word: &str) -> Option<(String, &'a str)> {
    term.split_once(word)
        .map(|(k, rest)| (k.trim().to_string(), rest))
}

fn parse_set(text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("set without parentheses: {text:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn split_terms(selector: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_term_kinds() {
        let obj = json!({"metadata": {"labels": {"app": "a", "zone": "z1"}}});
        for (sel, want) in [
            ("", true),
            ("app=a", true),
            ("app==a,zone=z1", true),
            ("app!=a", false),
            ("app", true),
            ("!app", false),
            ("!legacy", true),
            ("zone in (z1, z2)", true),
            ("zone notin (z1)", false),
            ("missing notin (x)", true),
            ("app=b", false),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&obj),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("a in b").is_err());
    }
}
