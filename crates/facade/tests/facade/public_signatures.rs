//! No tokio type in the facade's public signatures, except where the docs
//! name it: a runtime that is not tokio can use the facade.

use std::path::Path;

/// Public functions whose signature carries a tokio type on purpose, each
/// documented as such.
const DOCUMENTED: [&str; 1] = [
    // `TopologyReceiver` is a `tokio::sync::watch::Receiver`, kept for the
    // existing users; `snapshots()` is the runtime-free equivalent.
    "pub fn subscribe(&self) -> TopologyReceiver",
];

/// What betrays a tokio type in a signature.
const TOKIO_MARKS: [&str; 6] = [
    "tokio",
    "TopologyReceiver",
    "JoinHandle",
    "mpsc::",
    "oneshot::",
    "watch::",
];

/// Each `pub fn` / `pub async fn` / `pub type` item of the crate's sources
/// with its whole signature (up to the body or the `;`).
fn public_signatures(src: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(src)
        .unwrap_or_else(|e| panic!("reading {}: {e}", src.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let line = line.trim_start();
            if !(line.starts_with("pub fn ")
                || line.starts_with("pub async fn ")
                || line.starts_with("pub type "))
            {
                continue;
            }
            let mut signature = line.to_owned();
            while !signature.contains('{') && !signature.ends_with(';') {
                let Some(next) = lines.next() else { break };
                signature.push(' ');
                signature.push_str(next.trim());
            }
            let end = signature.find('{').unwrap_or(signature.len());
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push((name, signature[..end].trim().to_owned()));
        }
    }
    found
}

#[test]
fn no_tokio_type_in_a_public_signature_unless_documented() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let signatures = public_signatures(&src);
    assert!(
        signatures
            .iter()
            .any(|(_, s)| s.starts_with("pub fn topology_changes")),
        "the scan found no public functions: {signatures:?}"
    );
    let offending: Vec<_> = signatures
        .iter()
        .filter(|(_, signature)| TOKIO_MARKS.iter().any(|mark| signature.contains(mark)))
        .filter(|(_, signature)| !DOCUMENTED.iter().any(|allowed| signature == allowed))
        .collect();
    assert!(
        offending.is_empty(),
        "tokio types in public signatures (use a `futures` type, or document it and list it): {offending:#?}"
    );
}
