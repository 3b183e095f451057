//! [`WatchAssignment`]: one `--watch KEY=STRING` or `--watch KEY:=JSON`.

use serde_json::Value;

use crate::cli_error::CliError;

/// One `watch` key set on the command line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WatchAssignment {
    /// The key.
    pub(crate) key: String,
    /// The value: a string for `KEY=VALUE`, parsed JSON for `KEY:=VALUE`.
    pub(crate) value: Value,
}

impl WatchAssignment {
    /// Parses `KEY=STRING` (the rest of the argument, as is) or
    /// `KEY:=JSON`.
    pub(crate) fn parse(arg: &str) -> Result<Self, CliError> {
        let Some((left, right)) = arg.split_once('=') else {
            return Err(CliError::invalid_argument(format!(
                "--watch {arg:?}: expected KEY=STRING or KEY:=JSON"
            )));
        };
        let (key, value) = match left.strip_suffix(':') {
            Some(key) => {
                let value = serde_json::from_str(right).map_err(|e| {
                    CliError::invalid_argument(format!(
                        "--watch {key}:=...: invalid JSON: {e} (use {key}=... for a string)"
                    ))
                })?;
                (key, value)
            }
            None => (left, Value::String(right.to_owned())),
        };
        if key.is_empty() {
            return Err(CliError::invalid_argument(format!(
                "--watch {arg:?}: the key is empty"
            )));
        }
        Ok(Self {
            key: key.to_owned(),
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_json() {
        let a = WatchAssignment::parse("service=app=1").unwrap();
        assert_eq!((a.key.as_str(), a.value), ("service", json!("app=1")));
        let a = WatchAssignment::parse("passing:=true").unwrap();
        assert_eq!(a.value, json!(true));
        let a = WatchAssignment::parse(r#"members:=[{"id":"n1"}]"#).unwrap();
        assert_eq!(a.value, json!([{"id": "n1"}]));
        assert!(WatchAssignment::parse("passing:=yes").is_err());
        assert!(WatchAssignment::parse("novalue").is_err());
        assert!(WatchAssignment::parse("=x").is_err());
    }
}
