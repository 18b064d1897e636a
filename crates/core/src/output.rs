//! Writing a command's results: JSON and tables to stdout, readable reports to stderr.

use std::io::Write;

use crate::error::{Error, Result};

/// Writes a human-readable report to stderr (tables beside the JSON on stdout).
pub fn write_stderr(text: &str) -> Result<()> {
    let mut err = std::io::stderr().lock();
    err.write_all(text.as_bytes())
        .and_then(|()| err.flush())
        .map_err(|e| Error::io("writing to stderr", e))
}

/// Writes text to stdout. A closed pipe (`kiln … | head`) becomes an error that the
/// binaries' exit-code handling treats as success.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))
}

/// Pretty JSON of a report, with a final newline.
pub fn pretty_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|e| Error::Invalid(e.to_string()))
}
