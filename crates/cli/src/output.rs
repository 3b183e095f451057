//! [`Output`]: where a command's normal output and warnings go.

use std::io::Write;

/// Normal output (stdout, text or JSON) and warnings (stderr).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    /// Output in JSON (`--json`) or text.
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether `--json` was given.
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// One line of normal output. A closed stdout (`| head`) is not an
    /// error of the command: the line is dropped.
    pub(crate) fn line(&self, text: &str) {
        let _ = self.try_line(text);
    }

    /// One line of normal output, reporting a closed stdout.
    pub(crate) fn try_line(&self, text: &str) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.write_all(b"\n")?;
        stdout.flush()
    }

    /// A line of explanation on stdout, text mode only (so it interleaves
    /// with the output it explains).
    pub(crate) fn text_line(&self, text: &str) {
        if !self.json {
            self.line(text);
        }
    }

    /// A warning on stderr (`warning: ...`), in both modes.
    pub(crate) fn warn(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "warning: {text}");
    }

    /// A progress note on stderr, text mode only.
    pub(crate) fn note(&self, text: &str) {
        if !self.json {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }
}
