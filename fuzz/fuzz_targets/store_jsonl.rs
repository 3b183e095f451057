//! Fuzz target `store_jsonl`: see `provisioning_fuzz_replay::store_jsonl`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = provisioning_fuzz_replay::store_jsonl(data);
});
