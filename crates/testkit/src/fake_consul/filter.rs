//! A small subset of Consul's filter expressions (go-bexpr):
//! `SELECTOR == "v"`, `SELECTOR != "v"`, `"v" in SELECTOR`,
//! `SELECTOR contains "v"`, joined by `and`.
//!
//! Selectors: `Service.ID`, `Service.Service`, `Service.Address`,
//! `Service.Port`, `Service.Tags`, `Service.Meta.<key>`, `Node.Node`,
//! `Node.Address`. Anything else is rejected like Consul rejects a bad
//! expression (400).

use super::state::FakeInstance;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Eq(String, String),
    Ne(String, String),
    Contains(String, String),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Filter(Vec<Term>);

fn quoted(s: &str) -> Option<String> {
    let s = s.trim();
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.replace("\\\"", "\""))
}

fn selector(s: &str) -> Result<String, String> {
    let s = s.trim();
    let known = matches!(
        s,
        "Service.ID"
            | "Service.Service"
            | "Service.Address"
            | "Service.Port"
            | "Service.Tags"
            | "Node.Node"
            | "Node.Address"
    ) || s
        .strip_prefix("Service.Meta.")
        .is_some_and(|k| !k.is_empty());
    if known {
        Ok(s.to_owned())
    } else {
        Err(format!("Selector {s:?} is not valid"))
    }
}

impl Filter {
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in text.split(" and ") {
            let term = if let Some((l, r)) = part.split_once("!=") {
                Term::Ne(selector(l)?, quoted(r).ok_or("expected a quoted value")?)
            } else if let Some((l, r)) = part.split_once("==") {
                Term::Eq(selector(l)?, quoted(r).ok_or("expected a quoted value")?)
            } else if let Some((l, r)) = part.split_once(" contains ") {
                Term::Contains(selector(l)?, quoted(r).ok_or("expected a quoted value")?)
            } else if let Some((l, r)) = part.split_once(" in ") {
                Term::Contains(selector(r)?, quoted(l).ok_or("expected a quoted value")?)
            } else {
                return Err(format!(
                    "1:1 (0): no match found, expected an expression in {part:?}"
                ));
            };
            terms.push(term);
        }
        Ok(Self(terms))
    }

    pub(super) fn matches(&self, i: &FakeInstance) -> bool {
        let scalar = |sel: &str| -> Option<String> {
            Some(match sel {
                "Service.ID" => i.id.clone(),
                "Service.Service" => i.service.clone(),
                "Service.Address" => i.address.clone(),
                "Service.Port" => i.port.to_string(),
                "Node.Node" => i.node.clone(),
                "Node.Address" => i.node_address.clone(),
                other => i.meta.get(other.strip_prefix("Service.Meta.")?)?.clone(),
            })
        };
        self.0.iter().all(|t| match t {
            Term::Eq(sel, v) => scalar(sel).is_some_and(|x| x == *v),
            Term::Ne(sel, v) => scalar(sel).is_none_or(|x| x != *v),
            Term::Contains(sel, v) if sel == "Service.Tags" => i.tags.iter().any(|t| t == v),
            Term::Contains(sel, v) => scalar(sel).is_some_and(|x| x.contains(v.as_str())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_parses_and_matches() {
        let i = FakeInstance::new("app", "a1", "10.0.0.1", 1)
            .with_tag("blue")
            .with_meta("zone", "eu");
        let f = |t: &str| Filter::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert!(f(r#"Service.Meta.zone == "eu""#).matches(&i));
        assert!(!f(r#"Service.Meta.zone != "eu""#).matches(&i));
        assert!(f(r#""blue" in Service.Tags and Node.Node == "node-a1""#).matches(&i));
        assert!(!f(r#"Service.Tags contains "green""#).matches(&i));
        assert!(Filter::parse("Bogus.Field == \"x\"").is_err());
        assert!(Filter::parse("garbage").is_err());
    }
}
