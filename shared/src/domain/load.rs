//! Bulk loads: the writes of a backfill or an import, gathered and sent to Salesforce together,
//! so a large load goes through one Bulk API 2.0 job instead of a Collections call per 200.
//!
//! A change read by a backfill (a resync of everything or from a date, or of as many ids as the
//! job's bulk threshold) carries its resync's run as its load. The pusher does not write such a
//! change's Salesforce upsert at once: it stages it under the load and sends itself a flush
//! message, delayed by the quiet period. A flush that finds the load grew within the quiet period
//! is dropped (the staging that grew it sent a later one); the flush that finds it quiet writes
//! every staged write through the usual path, whose groups at or over the job's bulk threshold go
//! through one Bulk API job and smaller ones through Collections.
//!
//! The write backs that follow a load's writes (a Salesforce record learning the GSID of the
//! Company just created from it) are staged under the load as well, and the flush makes them
//! after its writes, in one Bulk API `update` job when they are as many as the bulk threshold:
//! a first load that creates 100,000 Companies writes their ids back in 7 jobs (a slice each)
//! instead of 500 Collections calls.

use serde::{Deserialize, Serialize};

use super::push::SideWrite;
use super::{RecordKey, System, WriteCommand, WriteMode};

/// A bulk load: the run of the backfill or import whose writes it gathers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LoadId(pub String);

impl std::fmt::Display for LoadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long a load must go without growing before it is written (production default).
pub const QUIET_MS: i64 = 60_000;

/// The most staged items one flush reads and writes: a load is written a slice at a time, each
/// slice by one invocation of the pusher (which then asks for the next), so what a flush holds
/// and how long it runs stay bounded however large the load. A slice's Salesforce writes of one
/// kind go through one Bulk API job, so the slice is also the most records of a job. The
/// pusher's 256 MB bound it: a slice of 50,000 writes took the pusher's process to 623 MB (about
/// 12 KB a write, measured in the 1,000,000 load), so a slice is 15,000 (about 210 MB by the same
/// measure).
pub const FLUSH_SLICE: usize = 15_000;

/// The writes queue's message that asks for a load to be written once it is quiet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadFlush {
    pub flush_load: LoadId,
}

/// A message on the writes queue: a write, or a load's flush (an object with `flush_load`).
#[derive(Clone, Debug, PartialEq)]
pub enum WritesMessage {
    Flush(LoadFlush),
    Write(Box<WriteCommand>),
    /// A write back to a source record that failed when it was first made.
    Side(SideWriteMessage),
}

/// The writes queue's message that carries a write back to a source record on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideWriteMessage {
    pub side_write: super::push::SideWrite,
}

impl<'de> Deserialize<'de> for WritesMessage {
    /// Told apart by `flush_load` and `side_write`, so a malformed write is reported with the field at fault.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(d)?;
        if value.get("flush_load").is_some() {
            serde_json::from_value(value)
                .map(Self::Flush)
                .map_err(D::Error::custom)
        } else if value.get("side_write").is_some() {
            serde_json::from_value(value)
                .map(Self::Side)
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(|w| Self::Write(Box::new(w)))
                .map_err(D::Error::custom)
        }
    }
}

/// What a resync or poll reads, as far as loads are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Everything, or everything modified since a date: a backfill.
    Backfill,
    /// Records by id (an import, or ids typed by hand): how many.
    Ids(usize),
    /// Records by their sync status, or a scheduled poll's window.
    Other,
}

/// The load the read's changes belong to, named by its run: backfills always (their size is
/// known only as they are read, and a small one is written through Collections when flushed),
/// ids when there are at least the job's bulk threshold of them, nothing else.
pub fn load_for(read: Read, run: &str, bulk_threshold: usize) -> Option<LoadId> {
    let bulk = match read {
        Read::Backfill => true,
        Read::Ids(n) => n >= bulk_threshold,
        Read::Other => false,
    };
    bulk.then(|| LoadId(run.to_string()))
}

/// What the store knows of a load. A flush takes out the staged writes it made, so a write
/// staged after a flush (a load resumed after a pause) makes the load unwritten again, and the
/// next flush writes what is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LoadState {
    /// When writes were last staged under it (epoch ms).
    pub last_staged_ms: i64,
    /// Whether everything staged under it is written.
    pub flushed: bool,
}

/// Whether `cmd` waits for its load: Salesforce upserts on an external id and Salesforce writes
/// by Id, which a Bulk API job (`upsert`, `update`) can make; every other write of a load goes
/// out at once (an update that must first look its Id up, and every Gainsight write).
pub fn stages(cmd: &WriteCommand) -> bool {
    let bulk_able = match cmd.key {
        RecordKey::ExternalId { .. } => cmd.mode == WriteMode::Upsert,
        RecordKey::Id { .. } => true,
    };
    cmd.load.is_some() && cmd.target == System::Salesforce && bulk_able
}

/// Whether a write back that follows a write of `load` waits for that load: those to Salesforce,
/// which a Bulk API `update` job can make. Write backs to Gainsight go out at once, as every
/// Gainsight write of a load does.
pub fn stages_side(side: &SideWrite, load: Option<&LoadId>) -> bool {
    load.is_some() && side.system == System::Salesforce
}

/// Everything staged under a load: its writes, and the write backs that followed writes of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Staged {
    pub writes: Vec<WriteCommand>,
    pub sides: Vec<SideWrite>,
}

impl Staged {
    /// Nothing staged: the load is written.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.sides.is_empty()
    }
}

/// What a flush does with the load as the store shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushVerdict {
    /// Unknown, or written already: nothing to do.
    Nothing,
    /// It grew within the quiet period: a later flush message comes.
    NotYet,
    /// Quiet: write it now.
    Write,
}

/// The verdict for a flush arriving at `now_ms`.
pub fn flush_verdict(state: Option<LoadState>, now_ms: i64, quiet_ms: i64) -> FlushVerdict {
    match state {
        None => FlushVerdict::Nothing,
        Some(s) if s.flushed => FlushVerdict::Nothing,
        Some(s) if now_ms - s.last_staged_ms < quiet_ms => FlushVerdict::NotYet,
        Some(_) => FlushVerdict::Write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LedgerKey;

    fn upsert(load: Option<&str>) -> WriteCommand {
        let body = serde_json::json!({
            "job": "company_account", "target": "salesforce", "object": "Account",
            "key": {"by": "external_id", "field": "Gainsight_Company_Id__c", "value": "G1"},
            "mode": "upsert", "fields": {"Name": "A"},
            "ledger_key": LedgerKey::Gainsight("G1".into()),
            "source": "gainsight", "event_id": "e1",
            "source_changed_at_ms": 1, "received_at_ms": 1,
        });
        let mut cmd: WriteCommand = serde_json::from_value(body).expect("a write command");
        cmd.load = load.map(|l| LoadId(l.into()));
        cmd
    }

    #[test]
    fn only_salesforce_upserts_and_writes_by_id_of_a_load_wait_for_it() {
        assert!(stages(&upsert(Some("run-1"))));
        assert!(!stages(&upsert(None)), "not part of a load");
        let mut to_gainsight = upsert(Some("run-1"));
        to_gainsight.target = System::Gainsight;
        assert!(!stages(&to_gainsight));
        let mut by_id = upsert(Some("run-1"));
        by_id.key = RecordKey::Id {
            value: "001A".into(),
        };
        assert!(stages(&by_id));
        let mut looked_up = upsert(Some("run-1"));
        looked_up.mode = WriteMode::Update;
        assert!(!stages(&looked_up), "an update that looks its Id up first");
    }

    #[test]
    fn only_salesforce_write_backs_of_a_load_wait_for_it() {
        let key = LedgerKey::SalesforceOnly("001A".into());
        let to_salesforce = SideWrite::new(
            ("company_account", &key),
            (System::Salesforce, "Account"),
            ("Id", "001A"),
            ("Gainsight_Company_Id__c", "G1".into()),
        );
        let load = LoadId("run-1".into());
        assert!(stages_side(&to_salesforce, Some(&load)));
        assert!(!stages_side(&to_salesforce, None), "not part of a load");
        let mut to_gainsight = to_salesforce.clone();
        to_gainsight.system = System::Gainsight;
        assert!(!stages_side(&to_gainsight, Some(&load)));
    }

    #[test]
    fn backfills_and_large_imports_are_loads() {
        let run = "20261126T050000Z-resync-1";
        assert_eq!(
            load_for(Read::Backfill, run, 2000),
            Some(LoadId(run.into()))
        );
        assert_eq!(
            load_for(Read::Ids(2000), run, 2000),
            Some(LoadId(run.into()))
        );
        assert_eq!(
            load_for(Read::Ids(1999), run, 2000),
            None,
            "a few ids go at once"
        );
        assert_eq!(load_for(Read::Other, run, 1), None);
    }

    #[test]
    fn a_flush_writes_only_a_quiet_unwritten_load() {
        let state = |last, flushed| {
            Some(LoadState {
                last_staged_ms: last,
                flushed,
            })
        };
        assert_eq!(flush_verdict(None, 100, 10), FlushVerdict::Nothing);
        assert_eq!(
            flush_verdict(state(0, true), 100, 10),
            FlushVerdict::Nothing
        );
        assert_eq!(
            flush_verdict(state(95, false), 100, 10),
            FlushVerdict::NotYet
        );
        assert_eq!(
            flush_verdict(state(90, false), 100, 10),
            FlushVerdict::Write
        );
    }

    #[test]
    fn the_writes_queue_carries_writes_and_flushes() {
        let flush: WritesMessage =
            serde_json::from_str(r#"{"flush_load": "run-1"}"#).expect("a flush");
        assert_eq!(
            flush,
            WritesMessage::Flush(LoadFlush {
                flush_load: LoadId("run-1".into())
            })
        );
        let text = serde_json::to_string(&upsert(Some("run-1"))).expect("serialises");
        let write: WritesMessage = serde_json::from_str(&text).expect("a write");
        assert!(
            matches!(write, WritesMessage::Write(cmd) if cmd.load == Some(LoadId("run-1".into())))
        );
        assert!(serde_json::from_str::<WritesMessage>(r#"{"flush_load": 3}"#).is_err());
        let bad = serde_json::from_str::<WritesMessage>(r#"{"job": "j"}"#).unwrap_err();
        assert!(bad.to_string().contains("missing field"), "{bad}");
    }
}
