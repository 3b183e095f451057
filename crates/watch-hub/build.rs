//! Declares the configuration flags of the model-checking build (see the
//! `loom` step of `cargo xtask ci`), so the compiler knows them.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(hub_loom)");
}
