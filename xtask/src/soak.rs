//! `cargo xtask soak`: the soak run.

/// Runs `cargo xtask soak`.
pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    Err("`cargo xtask soak` is not available yet (the soak run is tracked in issue 13)".into())
}
