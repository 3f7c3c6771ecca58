//! Scratch storage for what is too large to hold in memory: bytes appended to an unnamed file in
//! the temporary directory (Lambda's `/tmp`, its ephemeral storage) and read back by range. The
//! last few megabytes stay in memory until they fill a write; with no file to write to (none
//! could be made, or a write failed), the bytes stay in memory and the work goes on.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// How much is kept in memory before it goes to the file in one write.
const SPILL_AT: usize = 4 << 20;

/// Bytes appended, then read back by range.
#[derive(Default)]
pub struct Scratch {
    file: Option<File>,
    /// Whether making the file was tried (and failed): not tried again.
    no_file: bool,
    /// Bytes appended since the last write to the file.
    pending: Vec<u8>,
    /// How many bytes the file holds.
    written: u64,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("on_disk", &self.written)
            .field("in_memory", &self.pending.len())
            .finish()
    }
}

/// A file in the temporary directory that no one else can open: its name is removed as soon
/// as it is made, so the space is given back when the file is closed, whatever ends the process.
fn unnamed_file() -> std::io::Result<File> {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "scratch-{}-{}-{}",
        std::process::id(),
        MADE.fetch_add(1, Ordering::Relaxed),
        crate::time::now_ms()
    );
    let path = std::env::temp_dir().join(name);
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

impl Scratch {
    /// Appends `bytes`; where they end (the offset past their last byte).
    pub fn append(&mut self, bytes: &[u8]) -> u64 {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= SPILL_AT {
            self.spill();
        }
        self.written + self.pending.len() as u64
    }

    /// Writes what is in memory to the file, at its place: a write that failed half way is
    /// written again whole by the next.
    fn spill(&mut self) {
        if self.file.is_none() && !self.no_file {
            match unnamed_file() {
                Ok(file) => self.file = Some(file),
                Err(e) => {
                    tracing::warn!(error = %e, dir = %std::env::temp_dir().display(), "no scratch file: kept in memory");
                    self.no_file = true;
                }
            }
        }
        let Some(file) = &self.file else {
            return;
        };
        match file.write_all_at(&self.pending, self.written) {
            Ok(()) => {
                self.written += self.pending.len() as u64;
                self.pending.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, "scratch file not written: kept in memory for now")
            }
        }
    }

    /// The bytes from `start` to `end`, as appended (a range one `append` returned the end of,
    /// from the end before it).
    pub fn read(&self, start: u64, end: u64) -> Vec<u8> {
        if start >= self.written {
            let from = (start - self.written) as usize;
            let to = (end - self.written) as usize;
            return self.pending.get(from..to).unwrap_or_default().to_vec();
        }
        let mut bytes = vec![0; (end - start) as usize];
        let file = self.file.as_ref();
        let read = file.map(|f| f.read_exact_at(&mut bytes, start));
        // The file was written by this process and is open only to it: failing to read it back
        // is the machine failing, and a plan made without the record would be wrong.
        match read {
            Some(Ok(())) => bytes,
            Some(Err(e)) => panic!("the scratch file could not be read back: {e}"),
            None => panic!("bytes at {start} were written to a scratch file that is gone"),
        }
    }

    /// How many bytes are in the file (tests).
    pub fn on_disk(&self) -> u64 {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_appended_comes_back_from_memory_and_from_the_file() {
        let mut scratch = Scratch::default();
        let mut ends = vec![0];
        for i in 0..3_000u32 {
            let bytes = vec![(i % 251) as u8; 1 + (i as usize * 7) % 4_000];
            ends.push(scratch.append(&bytes));
        }
        assert!(scratch.on_disk() > 0, "{scratch:?}");
        assert!(
            !scratch.pending.is_empty(),
            "the last bytes still in memory"
        );
        for i in [0usize, 1, 1_500, 2_998, 2_999] {
            let got = scratch.read(ends[i], ends[i + 1]);
            assert_eq!(
                got,
                vec![(i % 251) as u8; 1 + (i * 7) % 4_000],
                "record {i}"
            );
        }
    }
}
