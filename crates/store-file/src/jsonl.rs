//! The `providers.jsonl` text format (CONTRACTS §1): lexical rules, line
//! numbers in errors, key order on write.

use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::{
    ProviderValidator, ProvisioningError, descriptor_from_json, descriptor_to_json,
};

const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// Decodes a whole file: one descriptor per `\n`-terminated line (final
/// newline optional, empty input = empty set). The first bad line fails
/// the whole decode with `file:line: ...`.
pub(crate) fn decode(
    bytes: &[u8],
    file: &str,
    validator: &ProviderValidator,
) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut out: Vec<ProviderDescriptor> = Vec::new();
    let mut checker = validator.set_checker();
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let at = |e: ProvisioningError| e.at_line(file, index + 1);
        let text = check_line(raw).map_err(at)?;
        let descriptor = descriptor_from_json(text).map_err(at)?;
        checker.add(&descriptor).map_err(at)?;
        out.push(descriptor);
    }
    Ok(out)
}

/// The lexical rules of one line, before JSON.
fn check_line(raw: &[u8]) -> Result<&str, ProvisioningError> {
    let lexical = |message: String| ProvisioningError::invalid(None, None, message);
    if raw.starts_with(BOM) {
        return Err(lexical(
            "byte-order mark: the file must be UTF-8 without a BOM".into(),
        ));
    }
    if let Some(at) = raw.iter().position(|&b| b == b'\r') {
        return Err(lexical(format!(
            "carriage return (\\r) at column {}: lines end with \\n only",
            at + 1
        )));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|e| lexical(format!("invalid UTF-8 at column {}", e.valid_up_to() + 1)))?;
    if text.trim().is_empty() {
        return Err(lexical("blank line".into()));
    }
    Ok(text)
}

/// Encodes a set after validating it: one line per descriptor, stored key
/// order, final newline.
pub(crate) fn encode(
    descriptors: &[ProviderDescriptor],
    validator: &ProviderValidator,
) -> Result<Vec<u8>, ProvisioningError> {
    validator.validate_set(descriptors).map_err(|(_, e)| e)?;
    let mut out = Vec::with_capacity(descriptors.len() * 160);
    for descriptor in descriptors {
        out.extend_from_slice(descriptor_to_json(descriptor)?.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn in_memory() -> ProviderValidator {
        ProviderValidator::new()
            .with_kind(Arc::new(provisioning_backend_memory::InMemoryKind::new()))
    }

    fn err(bytes: &[u8]) -> String {
        decode(bytes, "providers.jsonl", &in_memory())
            .unwrap_err()
            .to_string()
    }

    const A: &str = r#"{"id":"a","kind":"in_memory","priority":1,"enabled":true}"#;

    #[test]
    fn empty_and_final_newline_rules() {
        let v = in_memory();
        assert!(decode(b"", "f", &v).unwrap().is_empty());
        assert_eq!(decode(A.as_bytes(), "f", &v).unwrap().len(), 1);
        assert_eq!(
            decode(format!("{A}\n").as_bytes(), "f", &v).unwrap().len(),
            1
        );
        assert_eq!(err(b"\n"), "providers.jsonl:1: blank line");
        assert_eq!(
            err(format!("{A}\n\n").as_bytes()),
            "providers.jsonl:2: blank line"
        );
    }

    #[test]
    fn lexical_errors_name_their_line() {
        assert_eq!(
            err(format!("{A}\r\n").as_bytes()),
            format!(
                "providers.jsonl:1: carriage return (\\r) at column {}: lines end with \\n only",
                A.len() + 1
            )
        );
        let mut bom = BOM.to_vec();
        bom.extend_from_slice(A.as_bytes());
        assert!(err(&bom).starts_with("providers.jsonl:1: byte-order mark"));
        let mut bad = format!("{A}\n").into_bytes();
        bad.extend_from_slice(b"{\"id\":\"b\xff\"}");
        assert_eq!(err(&bad), "providers.jsonl:2: invalid UTF-8 at column 9");
    }
}
