//! Where records go: stdout, a file, an HTTP endpoint. Each sink is its own stream, with its own
//! hash chain.
mod file;
mod http;
mod spool;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use file::FileSink;
pub use http::HttpSink;
pub use spool::Spool;

use super::chain::{ChainState, SealError};
use super::record::Record;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("audit log {path:?}: {what}: {source}")]
    File {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("audit sink {url:?}: {why}")]
    Url { url: String, why: String },
    #[error(
        "the audit spool in {dir:?} is full ({max_bytes} bytes undelivered): the receiver is not taking records"
    )]
    SpoolFull { dir: PathBuf, max_bytes: u64 },
    #[error("writing to stdout: {0}")]
    Stdout(std::io::Error),
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// Where `--audit-log` sends records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    Stdout,
    File(PathBuf),
    Http(String),
}

impl std::str::FromStr for SinkSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "stdout" {
            Ok(Self::Stdout)
        } else if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err("file: needs a path, e.g. file:/var/log/lockstep/audit.log".into());
            }
            Ok(Self::File(PathBuf::from(path)))
        } else if text.starts_with("http://") || text.starts_with("https://") {
            Ok(Self::Http(text.to_owned()))
        } else {
            Err(format!(
                "{text:?} is not an audit sink: use stdout, file:PATH, or an http:// or https:// URL"
            ))
        }
    }
}

impl SinkSpec {
    /// The spool directory of an HTTP sink: one per URL under `base`.
    pub fn spool_dir(url: &str, base: &Path) -> PathBuf {
        let name: String = url
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(80)
            .collect();
        let hash = super::chain::line_hash(url);
        base.join(format!("{name}-{}", &hash[7..19]))
    }
}

/// stdout: one JSON object per line; the chain restarts with each process.
#[derive(Debug, Default)]
pub struct StdoutSink {
    chain: ChainState,
}

impl StdoutSink {
    pub fn write(&mut self, record: Record) -> Result<(), SinkError> {
        let line = self.chain.seal(record)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(SinkError::Stdout)
    }
}

/// One configured sink.
#[derive(Debug)]
pub enum Sink {
    Stdout(std::sync::Mutex<StdoutSink>),
    File(std::sync::Mutex<FileSink>),
    Http(HttpSink),
}

impl Sink {
    pub fn name(&self) -> String {
        match self {
            Sink::Stdout(_) => "stdout".into(),
            Sink::File(_) => "file".into(),
            Sink::Http(h) => h.url().to_owned(),
        }
    }

    pub fn write(&self, record: Record) -> Result<(), SinkError> {
        match self {
            Sink::Stdout(s) => s.lock().unwrap_or_else(|p| p.into_inner()).write(record),
            Sink::File(f) => f.lock().unwrap_or_else(|p| p.into_inner()).write(record),
            Sink::Http(h) => h.write(record),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_specs_parse() {
        assert_eq!("stdout".parse(), Ok(SinkSpec::Stdout));
        assert_eq!(
            "file:/var/log/a.log".parse(),
            Ok(SinkSpec::File("/var/log/a.log".into()))
        );
        assert_eq!(
            "https://siem.example/ingest".parse(),
            Ok(SinkSpec::Http("https://siem.example/ingest".into()))
        );
        assert!("file:".parse::<SinkSpec>().is_err());
        assert!("syslog".parse::<SinkSpec>().unwrap_err().contains("stdout"));
        let a = SinkSpec::spool_dir("http://a:1/x", Path::new("/s"));
        assert_ne!(a, SinkSpec::spool_dir("http://a:1/y", Path::new("/s")));
        assert!(a.starts_with("/s"));
    }
}
