//! The loader survives arbitrary bytes: it returns a set or a typed error
//! with a line number, never panics; whatever it accepts round-trips.

use proptest::prelude::*;
use provisioning_store_file::FileProviderStore;

use crate::common::{etcd, mem};

fn store() -> FileProviderStore {
    crate::common::file_store("/nonexistent/providers.jsonl")
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let store = store();
    match store.decode(bytes) {
        Ok(set) => {
            let again = store
                .encode(&set)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(
                store
                    .decode(&again)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?,
                set
            );
        }
        Err(e) => {
            let line = e.line();
            prop_assert!(line.is_some(), "error without a line: {e}");
            let prefix = format!("providers.jsonl:{}: ", line.unwrap_or(0));
            prop_assert!(e.to_string().starts_with(&prefix), "{}", e);
            prop_assert!(!e.code().is_empty());
        }
    }
    Ok(())
}

fn valid_file() -> Vec<u8> {
    store()
        .encode(&[mem("local", 0, 3), etcd("etcd-a", 10), etcd("etcd-b", 20)])
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check(&bytes)?;
    }

    #[test]
    fn mutated_valid_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut bytes = valid_file();
        for (at, byte, how) in edits {
            let i = at.index(bytes.len() + 1);
            match how {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => { bytes.remove(i); }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => bytes.push(byte),
            }
        }
        check(&bytes)?;
    }

    #[test]
    fn json_shaped_lines_never_panic(lines in proptest::collection::vec(
        proptest::string::string_regex(r#"\{("(id|kind|priority|endpoints|auth|tls|watch|enabled|token|prefix|members)":("[a-z:/._-]{0,12}"|[0-9]{1,3}|true|null|\[\]|\{\}),?){0,6}\}"#).unwrap(),
        0..5,
    )) {
        check(lines.join("\n").as_bytes())?;
    }
}
