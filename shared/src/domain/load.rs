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

use serde::{Deserialize, Serialize};

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

/// The writes queue's message that asks for a load to be written once it is quiet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadFlush {
    pub flush_load: LoadId,
}

/// A message on the writes queue: a write, or a load's flush.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum WritesMessage {
    Flush(LoadFlush),
    Write(Box<WriteCommand>),
}

/// What the store knows of a load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LoadState {
    /// When writes were last staged under it (epoch ms).
    pub last_staged_ms: i64,
    /// Writes staged under it (a write staged again for the same record counts again).
    pub staged: u64,
    /// Whether it was written already.
    pub flushed: bool,
}

/// Whether `cmd` waits for its load: only Salesforce upserts on an external id go through a Bulk
/// API job; every other write of a load goes out at once.
pub fn stages(cmd: &WriteCommand) -> bool {
    cmd.load.is_some()
        && cmd.target == System::Salesforce
        && cmd.mode == WriteMode::Upsert
        && matches!(cmd.key, RecordKey::ExternalId { .. })
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
    fn only_salesforce_upserts_of_a_load_wait_for_it() {
        assert!(stages(&upsert(Some("run-1"))));
        assert!(!stages(&upsert(None)), "not part of a load");
        let mut to_gainsight = upsert(Some("run-1"));
        to_gainsight.target = System::Gainsight;
        assert!(!stages(&to_gainsight));
        let mut by_id = upsert(Some("run-1"));
        by_id.key = RecordKey::Id {
            value: "001A".into(),
        };
        assert!(!stages(&by_id));
    }

    #[test]
    fn a_flush_writes_only_a_quiet_unwritten_load() {
        let state = |last, flushed| {
            Some(LoadState {
                last_staged_ms: last,
                staged: 3,
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
    }
}
