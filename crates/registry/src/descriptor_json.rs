//! JSON text of one descriptor (one line of `providers.jsonl`, a request
//! body), with errors that name the field and never echo a secret.

use provisioning_provider_api::{ProviderDescriptor, SecretRefError};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use crate::ProvisioningError;

/// Parses one descriptor from JSON text.
///
/// Unknown keys at any level are [`ProvisioningError::UnknownField`] with the
/// full path (`auth.tokn`); inline secrets are
/// [`ProvisioningError::InlineSecret`]; anything else is
/// [`ProvisioningError::InvalidConfig`] naming the field. Only the serde
/// shape is checked here; [`ProviderValidator`](crate::ProviderValidator)
/// checks the rest.
///
/// ```
/// use provisioning_registry::descriptor_from_json;
/// let e = descriptor_from_json(r#"{"id":"a","kind":"etcd","prioirty":1}"#).unwrap_err();
/// assert_eq!(e.to_string(), r#"unknown field "prioirty""#);
/// let e = descriptor_from_json(r#"{"id":"a","kind":"etcd","priority":1,"auth":{"token":"hunter2"}}"#)
///     .unwrap_err();
/// assert_eq!(e.code(), "inline_secret");
/// assert!(!e.to_string().contains("hunter2"));
/// ```
pub fn descriptor_from_json(text: &str) -> Result<ProviderDescriptor, ProvisioningError> {
    // serde's derive would also accept a struct as a positional array.
    if !text.trim_start().starts_with('{') {
        return Err(ProvisioningError::invalid(
            None,
            None,
            "expected a JSON object `{...}`",
        ));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let descriptor: ProviderDescriptor =
        serde_path_to_error::deserialize(&mut de).map_err(map_json_error)?;
    de.end().map_err(|e| {
        ProvisioningError::invalid(None, None, format!("invalid JSON: {}", strip_position(&e)))
    })?;
    Ok(descriptor)
}

/// The stored JSON text of one descriptor: keys in the order of CONTRACTS §1,
/// `enabled` always written, no trailing newline.
pub fn descriptor_to_json(descriptor: &ProviderDescriptor) -> Result<String, ProvisioningError> {
    serde_json::to_string(descriptor).map_err(|e| {
        ProvisioningError::invalid(
            Some(&descriptor.id),
            None,
            format!("cannot be written as JSON: {e}"),
        )
    })
}

/// Deserializes `T` from a JSON value, mapping errors like
/// [`descriptor_from_json`] does, with field paths relative to the value.
pub(crate) fn from_json_value<T: DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ProvisioningError> {
    serde_path_to_error::deserialize(value).map_err(map_json_error)
}

fn path_string(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// The message of a serde_json error without its ` at line L column C`.
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    if error.line() == 0 {
        return text;
    }
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_owned(),
        None => text,
    }
}

/// The name between the first pair of backticks after `prefix`.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    let end = rest.find('`')?;
    Some(&rest[..end])
}

/// Whether a value under this path may be a secret, so messages must not
/// echo it.
fn is_secret_path(path: &str) -> bool {
    path == "auth" || path.starts_with("auth.") || path == "tls" || path.starts_with("tls.")
}

fn map_json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ProvisioningError {
    let path = path_string(error.path());
    let inner = error.inner();
    let message = strip_position(inner);
    if matches!(
        inner.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    ) {
        return ProvisioningError::invalid(
            None,
            None,
            format!("invalid JSON: {message} at column {}", inner.column()),
        );
    }
    if let Some(name) = quoted_after(&message, "unknown field `") {
        // serde_path_to_error already ends the path with the unknown key.
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path
        } else {
            join(&path, name)
        };
        return ProvisioningError::UnknownField {
            provider: None,
            field,
        };
    }
    if let Some(name) = quoted_after(&message, "missing field `") {
        return ProvisioningError::invalid(None, Some(join(&path, name)), "missing");
    }
    if message.starts_with(&SecretRefError::Inline.to_string()) {
        return ProvisioningError::InlineSecret {
            provider: None,
            field: path,
        };
    }
    let field = (!path.is_empty()).then(|| path.clone());
    if is_secret_path(&path) {
        // serde's "invalid type: string \"..\"" would echo the value.
        let expected = message
            .find(", expected ")
            .map(|at| &message[at + 2..])
            .unwrap_or("a different value");
        return ProvisioningError::invalid(
            None,
            field,
            format!("invalid value (not shown), {expected}"),
        );
    }
    ProvisioningError::invalid(None, field, message.replace('`', "\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_unknown_field_has_its_path() {
        let e =
            descriptor_from_json(r#"{"id":"a","kind":"etcd","priority":1,"tls":{"veriffy":true}}"#)
                .unwrap_err();
        assert_eq!(e.field(), Some("tls.veriffy"));
        assert_eq!(e.code(), "invalid_config");
    }

    #[test]
    fn missing_and_malformed_fields_are_named() {
        let e = descriptor_from_json(r#"{"id":"a","kind":"etcd"}"#).unwrap_err();
        assert_eq!(e.to_string(), r#"field "priority": missing"#);
        let e = descriptor_from_json(r#"{"id":"a","kind":"etcd","priority":"x"}"#).unwrap_err();
        assert_eq!(e.field(), Some("priority"));
        let e =
            descriptor_from_json(r#"{"id":"a","kind":"etcd","priority":1,"endpoints":["x",3]}"#)
                .unwrap_err();
        assert_eq!(e.field(), Some("endpoints[1]"));
        let e = descriptor_from_json(r#"{"id":"Bad","kind":"etcd","priority":1}"#).unwrap_err();
        assert_eq!(e.field(), Some("id"));
    }

    #[test]
    fn secrets_are_not_echoed_in_type_errors() {
        let e = descriptor_from_json(r#"{"id":"a","kind":"etcd","priority":1,"auth":"hunter2"}"#)
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(e.field(), Some("auth"));
        let e =
            descriptor_from_json(r#"{"id":"a","kind":"etcd","priority":1,"tls":{"key":"s3cr3t"}}"#)
                .unwrap_err();
        assert_eq!(e.code(), "inline_secret");
        assert_eq!(e.field(), Some("tls.key"));
        assert!(!e.to_string().contains("s3cr3t"));
    }

    #[test]
    fn syntax_errors_and_trailing_text() {
        let e = descriptor_from_json(r#"["a","etcd",1]"#).unwrap_err();
        assert_eq!(e.to_string(), "expected a JSON object `{...}`");
        let e = descriptor_from_json(r#"{"id":"a","#).unwrap_err();
        assert!(e.to_string().starts_with("invalid JSON"), "{e}");
        let e = descriptor_from_json(r#"{"id":"a","kind":"etcd","priority":1} x"#).unwrap_err();
        assert!(e.to_string().starts_with("invalid JSON"), "{e}");
        let e =
            descriptor_from_json(r#"{"id":"a","id":"b","kind":"etcd","priority":1}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate field"), "{e}");
    }
}
