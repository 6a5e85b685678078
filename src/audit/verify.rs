//! `lockstep audit verify FILE`: checks a file's hash chain and names the first broken record.
use std::path::Path;

use super::chain::{self, Broken, Verified};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("reading {path:?}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the chain is broken at {broken}{}", .broken.auditid.as_ref().map(|id| format!(" (auditID {id})")).unwrap_or_default())]
    Broken { path: String, broken: Broken },
}

/// Verifies `path`; the summary line on success.
pub fn file(path: &Path) -> Result<String, VerifyError> {
    let text = std::fs::read_to_string(path).map_err(|source| VerifyError::Read {
        path: path.to_owned(),
        source,
    })?;
    // The file ends with a newline; anything else after the last one is a cut line.
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let lines: Vec<&str> = if body.is_empty() {
        vec![]
    } else {
        body.split('\n').collect()
    };
    let Verified {
        records,
        first_sequence,
        last,
    } = chain::verify(lines).map_err(|broken| VerifyError::Broken {
        path: path.display().to_string(),
        broken,
    })?;
    Ok(format!(
        "{}: {records} records, sequence {first_sequence}..{}, intact; last hash {}",
        path.display(),
        last.sequence,
        if last.last_hash.is_empty() {
            "-"
        } else {
            &last.last_hash
        }
    ))
}
