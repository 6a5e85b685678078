//! The hash chain of a stream of records, and its verification (`lockstep audit verify`).
//!
//! Each line carries its position (`sequence`) and the SHA-256 of the previous line
//! (`previousHash`), so a changed, removed or reordered line breaks the chain at the next line.
//! The chain is checked over the exact bytes of each line: no canonical form is needed.
use sha2::{Digest, Sha256};

use super::record::Record;

/// Where a stream stands: the next record follows `last_hash` at `sequence + 1`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainState {
    pub sequence: u64,
    pub last_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("serializing an audit record: {0}")]
    Json(#[from] serde_json::Error),
}

impl ChainState {
    /// Links `record` to the stream and returns its line (without the newline).
    pub fn seal(&mut self, mut record: Record) -> Result<String, SealError> {
        record.sequence = self.sequence + 1;
        record.previous_hash = self.last_hash.clone();
        let line = serde_json::to_string(&record)?;
        self.sequence = record.sequence;
        self.last_hash = line_hash(&line);
        Ok(line)
    }

    /// The state after `line`, the last line of a stream written before (a restart resumes it).
    pub fn after(line: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        Some(Self {
            sequence: v.get("sequence")?.as_u64()?,
            last_hash: line_hash(line),
        })
    }
}

/// `sha256:<hex>` of one line.
pub fn line_hash(line: &str) -> String {
    format!(
        "sha256:{}",
        base16ct::lower::encode_string(&Sha256::digest(line.as_bytes()))
    )
}

/// The first record that breaks the chain: its line number (from 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct Broken {
    pub line: usize,
    pub auditid: Option<String>,
    pub why: String,
}

/// What a verified file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: usize,
    pub first_sequence: u64,
    pub last: ChainState,
}

/// Checks the lines of one file of a stream. The first line is taken as the anchor (a rotated
/// file starts in the middle of its stream); every later line must follow the one before it.
pub fn verify<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Verified, Broken> {
    let mut previous: Option<(u64, String)> = None;
    let mut first_sequence = 0;
    let mut count = 0;
    for (index, line) in lines.into_iter().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            return Err(Broken {
                line: number,
                auditid: None,
                why: "empty line: a record was removed or truncated".into(),
            });
        }
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| Broken {
            line: number,
            auditid: None,
            why: format!("not a JSON record ({e}): the line was changed or truncated"),
        })?;
        let auditid = value
            .get("auditID")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let broken = |why: String| Broken {
            line: number,
            auditid: auditid.clone(),
            why,
        };
        let sequence = value
            .get("sequence")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| broken("no sequence: not a lockstep audit record".into()))?;
        let claimed = value
            .get("previousHash")
            .and_then(|v| v.as_str())
            .ok_or_else(|| broken("no previousHash: not a lockstep audit record".into()))?;
        match &previous {
            None => first_sequence = sequence,
            Some((prev_seq, prev_hash)) => {
                if sequence <= *prev_seq {
                    return Err(broken(format!(
                        "sequence {sequence} after {prev_seq}: records were reordered or repeated"
                    )));
                }
                if sequence != prev_seq + 1 {
                    return Err(broken(format!(
                        "sequence {sequence} after {prev_seq}: {} record(s) removed before this line",
                        sequence - prev_seq - 1
                    )));
                }
                if claimed != prev_hash {
                    return Err(Broken {
                        line: number - 1,
                        auditid: None,
                        why: format!(
                            "the record was changed: its hash is not the previousHash of line {number} (sequence {sequence}), or line {number} was put after it"
                        ),
                    });
                }
            }
        }
        previous = Some((sequence, line_hash(line)));
        count += 1;
    }
    let last = previous
        .map(|(sequence, last_hash)| ChainState {
            sequence,
            last_hash,
        })
        .unwrap_or_default();
    Ok(Verified {
        records: count,
        first_sequence,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Draft, Trigger, User, Verb};

    fn stream(n: usize) -> Vec<String> {
        let mut chain = ChainState::default();
        (0..n)
            .map(|i| {
                let draft = Draft::new(Verb::Get, Trigger::Periodic);
                chain
                    .seal(draft.complete(format!("id-{i}"), User::default()))
                    .unwrap()
            })
            .collect()
    }

    fn check(lines: &[String]) -> Result<Verified, Broken> {
        verify(lines.iter().map(String::as_str))
    }

    #[test]
    fn a_good_stream_verifies() {
        let lines = stream(5);
        let v = check(&lines).unwrap();
        assert_eq!((v.records, v.first_sequence, v.last.sequence), (5, 1, 5));
        assert_eq!(v.last.last_hash, line_hash(&lines[4]));
        assert_eq!(ChainState::after(&lines[4]), Some(v.last));
        // A file that starts mid-stream (after rotation) verifies from its first line.
        assert_eq!(check(&lines[2..]).unwrap().first_sequence, 3);
        assert_eq!(check(&[]).unwrap().records, 0);
    }

    #[test]
    fn a_changed_line_is_named() {
        let mut lines = stream(5);
        lines[2] = lines[2].replace("\"get\"", "\"delete\"");
        let err = check(&lines).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.why.contains("changed"), "{err}");
        lines[2] = "{not json".into();
        assert_eq!(check(&lines).unwrap_err().line, 3);
    }

    #[test]
    fn a_removed_line_is_named() {
        let mut lines = stream(5);
        lines.remove(2);
        let err = check(&lines).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.why.contains("1 record(s) removed"), "{err}");
        assert_eq!(err.auditid.as_deref(), Some("id-3"));
    }

    #[test]
    fn reordered_lines_are_named() {
        let mut lines = stream(5);
        lines.swap(1, 2);
        let err = check(&lines).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let mut lines = stream(5);
        lines.swap(3, 4);
        let err = check(&lines).unwrap_err();
        assert_eq!(err.line, 4, "{err}");
    }

    #[test]
    fn a_forged_sequence_still_breaks_the_hash() {
        let mut lines = stream(3);
        // Remove line 2 and renumber line 3 so the sequence looks whole.
        let third = lines.remove(2).replace("\"sequence\":3", "\"sequence\":2");
        lines[1] = third;
        let err = check(&lines).unwrap_err();
        assert_eq!(err.line, 1, "{err}");
    }
}
