//! `file:PATH`: JSON lines, each fsync'd before the operation goes on, so a crash loses no record
//! that was acknowledged; rotated by size into `PATH.1` ... `PATH.<keep>`. The chain continues
//! across rotations and restarts.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::SinkError;
use crate::audit::chain::ChainState;
use crate::audit::record::Record;

/// How much of a file's end is read to find its last line.
const TAIL_BYTES: u64 = 256 * 1024;

#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
    chain: ChainState,
}

impl FileSink {
    /// Opens (or creates) the file, failing at once if it cannot be written.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> Result<Self, SinkError> {
        let io = |what: &'static str| {
            let path = path.to_owned();
            move |source| SinkError::File { path, what, source }
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(io("cannot open the audit log for writing (a read-only path? mount a writable volume there, or pick another --audit-log file:PATH)"))?;
        let (mut chain, size) =
            resume(&mut file).map_err(io("reading the end of the audit log"))?;
        if size == 0
            && let Ok(mut previous) = File::open(rotated(path, 1))
            && let Ok((c, _)) = resume(&mut previous)
        {
            chain = c;
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            max_bytes: max_bytes.max(1),
            keep: keep.max(1),
            chain,
        })
    }

    pub fn write(&mut self, record: Record) -> Result<(), SinkError> {
        let mut line = self.chain.seal(record)?;
        line.push('\n');
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let io = |what: &'static str| {
            let path = self.path.clone();
            move |source| SinkError::File { path, what, source }
        };
        self.file
            .write_all(line.as_bytes())
            .map_err(io("writing a record"))?;
        self.file.sync_data().map_err(io("syncing a record"))?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), SinkError> {
        let io = |what: &'static str| {
            let path = self.path.clone();
            move |source| SinkError::File { path, what, source }
        };
        for n in (1..self.keep).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))
                    .map_err(io("rotating the audit log"))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))
            .map_err(io("rotating the audit log"))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .map_err(io("opening a new audit log after rotation"))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(dir) = File::open(dir)
        {
            // The renames are durable too.
            let _ = dir.sync_all();
        }
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The chain after the file's last complete line, and the file's size. A line without its newline
/// was cut by a crash before it was synced (never acknowledged): it is dropped.
fn resume(file: &mut File) -> std::io::Result<(ChainState, u64)> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let complete = match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None if start == 0 => 0,
        None => tail.len(),
    };
    let size = if complete < tail.len() {
        let size = start + complete as u64;
        file.set_len(size)?;
        file.sync_data()?;
        size
    } else {
        len
    };
    let text = String::from_utf8_lossy(&tail[..complete]);
    let chain = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(ChainState::after)
        .unwrap_or_default();
    Ok((chain, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::verify;
    use crate::audit::record::{Draft, Trigger, User, Verb};

    fn record(i: usize) -> Record {
        Draft::new(Verb::Get, Trigger::Periodic).complete(format!("id-{i}"), User::default())
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn writes_rotate_and_the_chain_continues_across_files_and_restarts() {
        let dir = std::env::temp_dir().join(format!("lockstep-audit-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.log");
        let mut sink = FileSink::open(&path, 1000, 3).unwrap();
        for i in 0..10 {
            sink.write(record(i)).unwrap();
        }
        drop(sink);
        // A crash in the middle of a line: the partial line is dropped on restart.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"partial")
            .unwrap();
        let mut sink = FileSink::open(&path, 1000, 3).unwrap();
        sink.write(record(10)).unwrap();
        let mut all = Vec::new();
        for n in (1..=3).rev() {
            all.extend(lines(&rotated(&path, n)));
        }
        all.extend(lines(&path));
        let v = verify(all.iter().map(String::as_str)).unwrap();
        assert_eq!(v.last.sequence, 11);
        assert!(rotated(&path, 1).exists() && !rotated(&path, 4).exists());
        assert!(all.len() < 11, "the oldest files were rotated away");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_read_only_path_fails_at_once_with_a_clear_message() {
        let err = FileSink::open(Path::new("/proc/no-such-dir/audit.log"), 10, 1).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/proc/no-such-dir/audit.log"), "{text}");
        assert!(text.contains("read-only"), "{text}");
    }
}
