//! The on-disk spool of an HTTP sink: records are appended (and fsync'd) here before the
//! operation goes on, sent from here in batches, and forgotten only once the receiver accepted
//! them. Bounded: when the undelivered records reach the limit, new records are refused.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::SinkError;
use crate::audit::chain::ChainState;
use crate::audit::record::Record;

const SPOOL: &str = "spool.jsonl";
const STATE: &str = "state";

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    file: File,
    len: u64,
    delivered: u64,
    max_bytes: u64,
    chain: ChainState,
}

impl Spool {
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SinkError> {
        let io = |what: &'static str| {
            let path = dir.to_owned();
            move |source| SinkError::File { path, what, source }
        };
        std::fs::create_dir_all(dir).map_err(io(
            "cannot create the audit spool directory (a read-only path? set --audit-spool-dir to a writable volume)",
        ))?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(dir.join(SPOOL))
            .map_err(io(
                "cannot open the audit spool for writing (a read-only path? set --audit-spool-dir to a writable volume)",
            ))?;
        let (delivered, saved) = read_state(dir);
        let mut text = String::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text))
            .map_err(io("reading the audit spool"))?;
        // A line cut by a crash was never acknowledged: drop it.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            file.set_len(complete as u64)
                .and_then(|_| file.sync_data())
                .map_err(io("repairing the audit spool"))?;
        }
        let chain = text[..complete]
            .lines()
            .next_back()
            .and_then(ChainState::after)
            .unwrap_or(saved);
        let len = complete as u64;
        Ok(Self {
            dir: dir.to_owned(),
            file,
            len,
            delivered: delivered.min(len),
            max_bytes: max_bytes.max(1),
            chain,
        })
    }

    /// Bytes waiting to be delivered.
    pub fn pending(&self) -> u64 {
        self.len - self.delivered
    }

    /// Appends a record, durably; refuses it when the spool is full.
    pub fn append(&mut self, record: Record) -> Result<(), SinkError> {
        let mut chain = self.chain.clone();
        let mut line = chain.seal(record)?;
        line.push('\n');
        let size = line.len() as u64;
        if self.pending() + size > self.max_bytes {
            return Err(SinkError::SpoolFull {
                dir: self.dir.clone(),
                max_bytes: self.max_bytes,
            });
        }
        if self.delivered > 0 && self.len + size > self.max_bytes {
            self.compact()?;
        }
        let io = |what: &'static str| {
            let path = self.dir.clone();
            move |source| SinkError::File { path, what, source }
        };
        self.file
            .write_all(line.as_bytes())
            .map_err(io("writing to the audit spool"))?;
        self.file
            .sync_data()
            .map_err(io("syncing the audit spool"))?;
        self.len += size;
        self.chain = chain;
        Ok(())
    }

    /// The next undelivered lines, at most `max_bytes` of them (at least one line), and the
    /// offset that acknowledges them.
    pub fn next_batch(&mut self, max_bytes: u64) -> Result<Option<(Vec<u8>, u64)>, SinkError> {
        if self.pending() == 0 {
            return Ok(None);
        }
        let io = |what: &'static str| {
            let path = self.dir.clone();
            move |source| SinkError::File { path, what, source }
        };
        // A batch never reads the whole backlog: at most `max_bytes`, more only for one long line.
        let mut buf = Vec::new();
        let first = self.pending().min(max_bytes.max(1));
        self.file
            .seek(SeekFrom::Start(self.delivered))
            .and_then(|_| (&self.file).take(first).read_to_end(&mut buf))
            .map_err(io("reading the audit spool"))?;
        if !buf.contains(&b'\n') {
            self.file
                .seek(SeekFrom::Start(self.delivered))
                .and_then(|_| {
                    buf.clear();
                    (&self.file).take(self.pending()).read_to_end(&mut buf)
                })
                .map_err(io("reading the audit spool"))?;
        }
        let mut end = 0;
        for (i, b) in buf.iter().enumerate() {
            if *b == b'\n' {
                if end > 0 && (i + 1) as u64 > max_bytes {
                    break;
                }
                end = i + 1;
            }
        }
        buf.truncate(end);
        Ok((end > 0).then(|| (buf, self.delivered + end as u64)))
    }

    /// The receiver accepted everything up to `offset`.
    pub fn acknowledge(&mut self, offset: u64) -> Result<(), SinkError> {
        self.delivered = offset.min(self.len);
        if self.delivered == self.len {
            self.file.set_len(0).map_err(|source| SinkError::File {
                path: self.dir.clone(),
                what: "emptying the delivered audit spool",
                source,
            })?;
            self.len = 0;
            self.delivered = 0;
        }
        self.save_state()
    }

    /// Drops the delivered head of the file, keeping the undelivered tail.
    fn compact(&mut self) -> Result<(), SinkError> {
        let io = |what: &'static str| {
            let path = self.dir.clone();
            move |source| SinkError::File { path, what, source }
        };
        let mut tail = Vec::new();
        self.file
            .seek(SeekFrom::Start(self.delivered))
            .and_then(|_| (&self.file).read_to_end(&mut tail))
            .map_err(io("reading the audit spool"))?;
        let fresh = self.dir.join(format!("{SPOOL}.new"));
        let mut new = File::create(&fresh).map_err(io("compacting the audit spool"))?;
        new.write_all(&tail)
            .and_then(|_| new.sync_all())
            .map_err(io("compacting the audit spool"))?;
        // State first: after a crash between the two steps, records are sent twice, never lost.
        self.delivered = 0;
        self.save_state()?;
        std::fs::rename(&fresh, self.dir.join(SPOOL)).map_err(io("compacting the audit spool"))?;
        self.file = OpenOptions::new()
            .append(true)
            .read(true)
            .open(self.dir.join(SPOOL))
            .map_err(io("reopening the audit spool"))?;
        self.len = tail.len() as u64;
        Ok(())
    }

    fn save_state(&self) -> Result<(), SinkError> {
        let text = format!(
            "{} {} {}\n",
            self.delivered, self.chain.sequence, self.chain.last_hash
        );
        let tmp = self.dir.join(format!("{STATE}.new"));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.dir.join(STATE))
        };
        write().map_err(|source| SinkError::File {
            path: self.dir.clone(),
            what: "saving the audit spool's state",
            source,
        })
    }
}

/// The delivered offset and the chain saved with it; zero when there is none.
fn read_state(dir: &Path) -> (u64, ChainState) {
    let text = std::fs::read_to_string(dir.join(STATE)).unwrap_or_default();
    let mut parts = text.split_whitespace();
    let delivered = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let sequence = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let last_hash = parts.next().unwrap_or_default().to_owned();
    (
        delivered,
        ChainState {
            sequence,
            last_hash,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::verify;
    use crate::audit::record::{Draft, Trigger, User, Verb};

    fn record(i: usize) -> Record {
        Draft::new(Verb::Get, Trigger::Periodic).complete(format!("id-{i}"), User::default())
    }

    fn ids(batch: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(batch)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["auditID"].to_string())
            .collect()
    }

    #[test]
    fn records_survive_a_restart_and_are_sent_once_acknowledged() {
        let dir = std::env::temp_dir().join(format!("lockstep-spool-{}", uuid::Uuid::now_v7()));
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        for i in 0..5 {
            spool.append(record(i)).unwrap();
        }
        let (batch, end) = spool.next_batch(1).unwrap().unwrap();
        assert_eq!(
            ids(&batch).len(),
            1,
            "at least one line, even over the batch size"
        );
        spool.acknowledge(end).unwrap();
        drop(spool);

        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.append(record(5)).unwrap();
        let (batch, end) = spool.next_batch(1 << 20).unwrap().unwrap();
        assert_eq!(ids(&batch).len(), 5, "the four left and the new one");
        let text = String::from_utf8_lossy(&batch).to_string();
        assert_eq!(verify(text.lines()).unwrap().last.sequence, 6);
        spool.acknowledge(end).unwrap();
        assert_eq!(spool.next_batch(1 << 20).unwrap(), None);
        drop(spool);

        // Emptied, the spool still continues the chain from its saved state.
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.append(record(6)).unwrap();
        let (batch, _) = spool.next_batch(1 << 20).unwrap().unwrap();
        let line = String::from_utf8_lossy(&batch).to_string();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["sequence"], 7);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_full_spool_refuses_records_and_compacts_what_was_delivered() {
        let dir = std::env::temp_dir().join(format!("lockstep-spool-{}", uuid::Uuid::now_v7()));
        let one = serde_json::to_string(&record(0)).unwrap().len() as u64 + 40;
        let mut spool = Spool::open(&dir, one * 3).unwrap();
        let mut accepted = 0;
        for i in 0..10 {
            if spool.append(record(i)).is_ok() {
                accepted += 1;
            }
        }
        assert!((2..=3).contains(&accepted), "{accepted}");
        assert!(matches!(
            spool.append(record(99)),
            Err(SinkError::SpoolFull { .. })
        ));
        let (_, end) = spool.next_batch(1).unwrap().unwrap();
        spool.acknowledge(end).unwrap();
        spool.append(record(100)).unwrap();
        let (batch, _) = spool.next_batch(1 << 20).unwrap().unwrap();
        let text = String::from_utf8_lossy(&batch).to_string();
        assert_eq!(text.lines().count(), accepted);
        verify(text.lines()).unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }
}
