//! Fuzz target `etcd_value`: see `provisioning_fuzz_replay::etcd_value`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = provisioning_fuzz_replay::etcd_value(data);
});
