//! `cargo xtask fuzz`: the fuzz targets.

/// Runs `cargo xtask fuzz`.
pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    Err("`cargo xtask fuzz` is not available yet (the fuzz targets is tracked in issue 14)".into())
}
