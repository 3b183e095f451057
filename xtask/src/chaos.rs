//! `cargo xtask chaos`: the chaos matrix.

/// Runs `cargo xtask chaos`.
pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    Err("`cargo xtask chaos` is not available yet (the chaos matrix is tracked in issue 13)".into())
}
