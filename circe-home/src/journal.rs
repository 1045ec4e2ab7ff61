//! circe-home's journal: every event the ledger learns (an input submitted,
//! an output delivered, a task's report, an input failed, a replay, a new
//! placement), appended to one
//! file before the call that brought it is acknowledged. A restarted
//! circe-home replays it into a fresh ledger, so a crash loses no input,
//! no output record and no report, and finished inputs are not counted
//! twice.
//!
//! Each record is a length-delimited protobuf message written with one
//! `write` to a file opened for appending: a process that dies (SIGKILL
//! included) leaves whole records behind, since the kernel already holds
//! every write that returned. Records are not fsynced one by one (a
//! machine that loses power may lose the last ones; the inputs' files are
//! durable, and workers redeliver what home did not acknowledge). A
//! partial last record, from a crash mid-write, is cut off on replay.

use jupiter_common::proto::circe::home::v1::TaskReport;
use jupiter_common::proto::circe::worker::v1::FileHeader;
use prost::Message;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(oneof = "Event", tags = "1, 2, 3, 4, 5, 6")]
    pub event: Option<Event>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Event {
    #[prost(message, tag = "1")]
    Submitted(Submitted),
    #[prost(message, tag = "2")]
    Delivered(Delivered),
    #[prost(message, tag = "3")]
    Report(TaskReport),
    #[prost(message, tag = "4")]
    Failed(Failed),
    #[prost(message, tag = "5")]
    Replayed(Replayed),
    #[prost(message, tag = "6")]
    Placed(Placed),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Submitted {
    #[prost(string, tag = "1")]
    pub input: String,
    #[prost(int64, tag = "2")]
    pub at_unix_nanos: i64,
    /// The placement the input follows (0 in journals older than placements).
    #[prost(uint32, tag = "3")]
    pub placement: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Delivered {
    #[prost(message, optional, tag = "1")]
    pub header: Option<FileHeader>,
    /// The output's path under the output folder.
    #[prost(string, tag = "2")]
    pub relative: String,
    #[prost(int64, tag = "3")]
    pub at_unix_nanos: i64,
}

/// Every unfinished input was fed again as its next pass.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Replayed {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(int64, tag = "2")]
    pub at_unix_nanos: i64,
}

/// A new placement: inputs submitted or replayed from then on follow it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Placed {
    #[prost(uint32, tag = "1")]
    pub placement: u32,
    /// The ingress tasks that moved -> their worker's URL.
    #[prost(map = "string, string", tag = "2")]
    pub ingress: HashMap<String, String>,
    #[prost(string, tag = "3")]
    pub reason: String,
    #[prost(int64, tag = "4")]
    pub at_unix_nanos: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Failed {
    #[prost(string, tag = "1")]
    pub input: String,
    #[prost(string, tag = "2")]
    pub error: String,
}

/// The journal file, open for appending.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads back every whole
    /// record in it; a torn last record is cut off so new ones follow the
    /// last whole one.
    pub fn open(path: &Path) -> io::Result<(Self, Vec<Event>)> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let (events, whole) = decode_all(&bytes);
        if whole < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = bytes.len() - whole,
                "journal ends in a partial record (a crash mid-write); cutting it off"
            );
            OpenOptions::new().write(true).open(path)?.set_len(whole as u64)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
            },
            events,
        ))
    }

    /// Appends one event with a single write.
    pub fn append(&mut self, event: Event) -> io::Result<()> {
        let record = Record { event: Some(event) };
        self.file.write_all(&record.encode_length_delimited_to_vec())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The events of every whole record, and how many bytes they span.
fn decode_all(bytes: &[u8]) -> (Vec<Event>, usize) {
    let mut events = Vec::new();
    let mut rest = bytes;
    let mut whole = 0;
    while !rest.is_empty() {
        let mut cursor = rest;
        let Ok(record) = Record::decode_length_delimited(&mut cursor) else {
            break;
        };
        whole += rest.len() - cursor.len();
        rest = cursor;
        if let Some(event) = record.event {
            events.push(event);
        }
    }
    (events, whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(input: &str) -> Event {
        Event::Submitted(Submitted {
            input: input.into(),
            at_unix_nanos: 7,
            placement: 0,
        })
    }

    /// A record as written before placements existed: the input and its
    /// time, nothing more.
    #[derive(Clone, PartialEq, prost::Message)]
    struct OldSubmitted {
        #[prost(string, tag = "1")]
        input: String,
        #[prost(int64, tag = "2")]
        at_unix_nanos: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct OldRecord {
        #[prost(message, optional, tag = "1")]
        submitted: Option<OldSubmitted>,
    }

    #[test]
    fn records_read_back_in_order_across_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let (mut journal, events) = Journal::open(&path).expect("open");
        assert!(events.is_empty());
        journal.append(submitted("a")).expect("append");
        journal
            .append(Event::Failed(Failed {
                input: "a".into(),
                error: "boom".into(),
            }))
            .expect("append");
        drop(journal);
        let (mut journal, events) = Journal::open(&path).expect("reopen");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], submitted("a"));
        journal.append(submitted("b")).expect("append");
        let (_, events) = Journal::open(&path).expect("reopen");
        assert_eq!(events.len(), 3);
        assert_eq!(events[2], submitted("b"));
    }

    #[test]
    fn a_torn_last_record_is_cut_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let (mut journal, _) = Journal::open(&path).expect("open");
        journal.append(submitted("a")).expect("append");
        drop(journal);
        let whole = std::fs::metadata(&path).expect("stat").len();
        // Half of a second record, as a crash mid-write would leave.
        let second = Record {
            event: Some(submitted("second")),
        }
        .encode_length_delimited_to_vec();
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(&second[..second.len() / 2]).expect("write");
        drop(file);
        let (mut journal, events) = Journal::open(&path).expect("reopen");
        assert_eq!(events, [submitted("a")]);
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), whole);
        journal.append(submitted("c")).expect("append");
        let (_, events) = Journal::open(&path).expect("reopen");
        assert_eq!(events, [submitted("a"), submitted("c")]);
    }

    #[test]
    fn a_placement_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let placed = Event::Placed(Placed {
            placement: 1,
            ingress: HashMap::from([("task0".to_string(), "http://w9:7301".to_string())]),
            reason: "link w0-w1 slowed".into(),
            at_unix_nanos: 9,
        });
        let moved = Event::Submitted(Submitted {
            input: "b".into(),
            at_unix_nanos: 10,
            placement: 1,
        });
        let (mut journal, _) = Journal::open(&path).expect("open");
        journal.append(submitted("a")).expect("append");
        journal.append(placed.clone()).expect("append");
        journal.append(moved.clone()).expect("append");
        let (_, events) = Journal::open(&path).expect("reopen");
        assert_eq!(events, [submitted("a"), placed, moved]);
    }

    #[test]
    fn an_old_submission_follows_the_first_placement() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let old = OldRecord {
            submitted: Some(OldSubmitted {
                input: "a".into(),
                at_unix_nanos: 7,
            }),
        };
        std::fs::write(&path, old.encode_length_delimited_to_vec()).expect("write");
        let (_, events) = Journal::open(&path).expect("open");
        assert_eq!(events, [submitted("a")]);
    }
}
