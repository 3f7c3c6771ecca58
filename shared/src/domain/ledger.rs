//! The sync ledger: one record per synced record pair and job, answering "did this sync, and if
//! not, why?".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{LedgerKey, System};

/// What was last synced for one mapped field of a record pair: the hash of its value on each side,
/// which side it came from and when. Echoes and conflicts are decided from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldState {
    /// Hash of the value as Gainsight holds it.
    pub gainsight: u64,
    /// Hash of the value as Salesforce holds it.
    pub salesforce: u64,
    pub from: System,
    /// The source's modified timestamp of the change that set it (epoch ms, source clock).
    pub changed_at_ms: i64,
    /// When the write was acknowledged (epoch ms); 0 until it was.
    #[serde(default)]
    pub synced_at_ms: i64,
}

impl FieldState {
    pub fn hash_in(&self, system: System) -> u64 {
        match system {
            System::Gainsight => self.gainsight,
            System::Salesforce => self.salesforce,
        }
    }

    /// Whether a change from `source`, made at `changed_at` and giving the field a value of hash
    /// `source_hash` there, and this last sync both changed the field: the other side's value
    /// reached `source` after that change was made there.
    pub fn both_changed(&self, source: System, changed_at: i64, source_hash: u64) -> bool {
        self.from == source.other()
            && changed_at <= self.synced_at_ms
            && self.hash_in(source) != source_hash
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Synced,
    Error,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Synced => "synced",
            SyncStatus::Error => "error",
        }
    }
}

impl std::str::FromStr for SyncStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "synced" => Ok(SyncStatus::Synced),
            "error" => Ok(SyncStatus::Error),
            other => Err(format!(
                "unknown status {other:?}: expected synced or error"
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerRecord {
    pub job: String,
    /// The pair's Gainsight id, or its Salesforce id until it has a Gainsight twin.
    pub key: LedgerKey,
    pub salesforce_id: Option<String>,
    /// Has synced at least once. Not exclusive with `error`: a record that synced once and failed
    /// since has both.
    pub synced: bool,
    /// The last attempt failed.
    pub error: bool,
    pub last_sync_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    /// Per mapped field (by its Gainsight-side name): what was last synced.
    pub fields: BTreeMap<String, FieldState>,
    /// Source timestamp of the last change written from Gainsight: older ones are stale.
    pub gainsight_changed_at_ms: Option<i64>,
    /// Same, from Salesforce (each system's clock is compared only with itself).
    pub salesforce_changed_at_ms: Option<i64>,
    pub ignored_count: u64,
    pub last_ignored_reason: Option<String>,
    /// When the last change was ignored (epoch ms).
    #[serde(default)]
    pub last_ignored_at_ms: Option<i64>,
    pub version: u64,
    /// The last `HISTORY_KEPT` outcomes, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// Update-only writes that found no twin, by the system they were for: kept until a write
    /// to that system lands, which carries them along, so a change made while the twin's
    /// creation was still on its way is not lost.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parked: BTreeMap<System, super::WriteCommand>,
    /// Per source, the time of the newest change of it the mapper queued a write for, noted on
    /// records already in the ledger: while it is newer than the last change written from that
    /// source, that write is still on its way (see `in_flight_before`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mapped_at: BTreeMap<System, i64>,
    /// While a change of the record waits for the record it refers to: which one, and why
    /// (`domain::waiting`). Cleared when the record syncs or fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Per side, what last became of its record in its own system (deleted, merged away,
    /// restored), when the sync heard of it: deletes are recorded here, not propagated.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub presence: BTreeMap<System, Presence>,
}

/// What became of one side's record in its own system, by whom and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub state: PresenceState,
    /// When the source says it happened (epoch ms).
    pub at_ms: i64,
    /// The user who did it, when the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Deleted,
    /// Deleted by a merge into the record `into`.
    Merged {
        into: String,
    },
    /// Taken back out of the recycle bin.
    Restored,
}

impl Presence {
    /// How people read it: "deleted at T by user U".
    pub fn describe(&self) -> String {
        let what = match &self.state {
            PresenceState::Deleted => "deleted".to_string(),
            PresenceState::Merged { into } => format!("merged into {into}"),
            PresenceState::Restored => "restored".to_string(),
        };
        let by = (self.by.as_deref()).map_or(String::new(), |u| format!(" by user {u}"));
        format!("{what} at {}{by}", crate::time::rfc3339(self.at_ms))
    }
}

/// How many outcomes a ledger record remembers.
pub const HISTORY_KEPT: usize = 10;

/// What one attempt at a record came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Synced,
    Error,
    Ignored,
    /// An operator linked the pair by hand.
    Imported,
    /// A change waits for the record it refers to.
    Waiting,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Synced => "synced",
            Outcome::Error => "error",
            Outcome::Ignored => "ignored",
            Outcome::Imported => "imported",
            Outcome::Waiting => "waiting",
        }
    }
}

/// One outcome in a record's history, linked to the run that produced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The record's version this outcome made (orders the entries).
    pub version: u64,
    pub at_ms: i64,
    /// The run (execution activity) that produced it; empty when written outside a run.
    pub run: String,
    pub outcome: Outcome,
    /// The error or the reason the change was ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl LedgerRecord {
    /// A record that has seen nothing yet.
    pub fn new(job: impl Into<String>, key: LedgerKey) -> Self {
        Self {
            job: job.into(),
            key,
            salesforce_id: None,
            synced: false,
            error: false,
            last_sync_at_ms: None,
            last_error: None,
            last_error_at_ms: None,
            fields: BTreeMap::new(),
            gainsight_changed_at_ms: None,
            salesforce_changed_at_ms: None,
            ignored_count: 0,
            last_ignored_reason: None,
            last_ignored_at_ms: None,
            version: 0,
            history: Vec::new(),
            parked: BTreeMap::new(),
            mapped_at: BTreeMap::new(),
            waiting: None,
            presence: BTreeMap::new(),
        }
    }

    pub fn changed_at(&self, source: System) -> Option<i64> {
        match source {
            System::Gainsight => self.gainsight_changed_at_ms,
            System::Salesforce => self.salesforce_changed_at_ms,
        }
    }

    /// Whether the write of an earlier change from `source` than one made at `at_ms` was queued
    /// and has not landed yet: a change that finds every value as last synced must then still be
    /// written, or the earlier one, landing after it, would leave its values in the target.
    pub fn in_flight_before(&self, source: System, at_ms: i64) -> bool {
        let Some(&mapped) = self.mapped_at.get(&source) else {
            return false;
        };
        mapped > self.changed_at(source).unwrap_or(i64::MIN) && mapped < at_ms
    }

    /// Notes that the write of a change from `source` made at `at_ms` was queued; an older note
    /// than the one kept changes nothing.
    pub fn mapped(&mut self, source: System, at_ms: i64) {
        let kept = self.mapped_at.entry(source).or_insert(at_ms);
        *kept = (*kept).max(at_ms);
    }

    /// What the record becomes once `update`, made at `at_ms` by `run`, is applied: the rule the
    /// state store's adapters implement atomically.
    pub fn apply(&mut self, update: &LedgerUpdate, at_ms: i64, run: &str) {
        self.version += 1;
        self.history
            .push(update.history_entry(self.version, at_ms, run));
        if self.history.len() > HISTORY_KEPT {
            self.history.drain(..self.history.len() - HISTORY_KEPT);
        }
        match update {
            LedgerUpdate::Synced {
                salesforce_id,
                source,
                source_changed_at_ms,
                fields,
            } => {
                if salesforce_id.is_some() {
                    self.salesforce_id = salesforce_id.clone();
                }
                // The last attempt succeeded: the record leaves the error status, and its last
                // error text stays for the record's history.
                self.synced = true;
                self.error = false;
                self.waiting = None;
                // A write to a system carries what was parked for it (see `push::unpark`).
                self.parked.remove(&source.other());
                self.last_sync_at_ms = Some(at_ms);
                self.fields.extend(fields.clone());
                match source {
                    System::Gainsight => self.gainsight_changed_at_ms = Some(*source_changed_at_ms),
                    System::Salesforce => {
                        self.salesforce_changed_at_ms = Some(*source_changed_at_ms)
                    }
                }
            }
            LedgerUpdate::Failed { message } => {
                self.waiting = None;
                self.error = true;
                self.last_error = Some(message.clone());
                self.last_error_at_ms = Some(at_ms);
            }
            LedgerUpdate::Ignored { reason } => self.ignored(reason, at_ms),
            LedgerUpdate::InSync { reason, seen } => {
                self.ignored(reason, at_ms);
                let changed = match seen.source {
                    System::Gainsight => &mut self.gainsight_changed_at_ms,
                    System::Salesforce => &mut self.salesforce_changed_at_ms,
                };
                *changed = Some(changed.unwrap_or(i64::MIN).max(seen.changed_at_ms));
            }
            LedgerUpdate::Parked { reason, write } => {
                self.ignored(reason, at_ms);
                self.parked.insert(write.target, (**write).clone());
            }
            LedgerUpdate::Imported { salesforce_id, .. } => {
                self.salesforce_id = Some(salesforce_id.clone());
            }
            LedgerUpdate::Unlinked { .. } => self.salesforce_id = None,
            LedgerUpdate::Waiting { reason } => self.waiting = Some(reason.clone()),
            LedgerUpdate::Presence {
                reason,
                side,
                presence,
            } => {
                self.ignored(reason, at_ms);
                self.presence.insert(*side, presence.clone());
            }
        }
    }

    fn ignored(&mut self, reason: &str, at_ms: i64) {
        self.ignored_count += 1;
        self.last_ignored_reason = Some(reason.to_string());
        self.last_ignored_at_ms = Some(at_ms);
    }

    pub fn has_status(&self, status: SyncStatus) -> bool {
        match status {
            SyncStatus::Synced => self.synced,
            SyncStatus::Error => self.error,
        }
    }
}

/// What a writer knew of a ledger record before writing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prior {
    /// Not read: the store reads it.
    Unread,
    /// Absent when read: stores may write it whole (and read again if it appeared meanwhile).
    Absent,
    /// Present at this version when read.
    Version(u64),
}

impl Prior {
    pub fn of(record: Option<&LedgerRecord>) -> Self {
        match record {
            None => Prior::Absent,
            Some(r) => Prior::Version(r.version),
        }
    }
}

/// Ledger records read for a batch, by job and key.
#[derive(Debug, Default)]
pub struct LedgerBatch {
    /// job -> ledger key -> record; records never synced are absent.
    records: std::collections::HashMap<String, std::collections::HashMap<LedgerKey, LedgerRecord>>,
    /// Jobs whose read failed: their messages should be retried.
    unreadable: Vec<String>,
}

impl LedgerBatch {
    /// Adds records read.
    pub fn extend(&mut self, records: impl IntoIterator<Item = LedgerRecord>) {
        for r in records {
            self.records
                .entry(r.job.clone())
                .or_default()
                .insert(r.key.clone(), r);
        }
    }

    pub fn mark_unreadable(&mut self, job: &str) {
        self.unreadable.push(job.to_string());
    }

    pub fn get(&self, job: &str, key: &LedgerKey) -> Option<&LedgerRecord> {
        self.records.get(job).and_then(|by_key| by_key.get(key))
    }

    pub fn is_unreadable(&self, job: &str) -> bool {
        self.unreadable.iter().any(|j| j == job)
    }

    /// Notes on a record read (if it was) that the write of its change from `source` made at
    /// `at_ms` was queued, so the later changes of the same batch see it on its way.
    pub fn note_mapped(&mut self, job: &str, key: &LedgerKey, source: System, at_ms: i64) {
        if let Some(record) = self.records.get_mut(job).and_then(|k| k.get_mut(key)) {
            record.mapped(source, at_ms);
        }
    }
}

/// What an `InSync` change saw: its source and time, and the source's `mapped_at` on the record
/// when it was mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InSync {
    pub source: System,
    pub changed_at_ms: i64,
    pub mapped_at: Option<i64>,
}

/// What happened to a record; applied to the ledger atomically by the state store.
#[derive(Clone, Debug, PartialEq)]
pub enum LedgerUpdate {
    Synced {
        salesforce_id: Option<String>,
        source: System,
        source_changed_at_ms: i64,
        /// States of the fields written (merged into the record's, others kept).
        fields: BTreeMap<String, FieldState>,
    },
    Failed {
        message: String,
    },
    Ignored {
        reason: String,
    },
    /// A change found every mapped value as last synced on a synced record: ignored, and from
    /// now on the record is known to match its source as of that change, so a write of an older
    /// change from that source still on its way is stale (it would set back what the source
    /// holds now).
    InSync {
        reason: String,
        seen: InSync,
    },
    /// An update-only write found no twin: ignored, and kept for when the twin exists.
    Parked {
        reason: String,
        write: Box<super::WriteCommand>,
    },
    /// An operator linked the pair (`syncctl import`, or a first load's link): from now on the
    /// Salesforce record is addressed by this Id instead of being matched on identifiers.
    Imported {
        salesforce_id: String,
        /// Where the link came from, as a history line ends: `the import of <file>`, `first
        /// load <run>, <why>`.
        origin: String,
    },
    /// An operator linked this record's Salesforce twin to another Gainsight record
    /// (`syncctl import --relink`): the pair is undone, and the record is matched on identifiers
    /// again.
    Unlinked {
        /// The Salesforce id it was linked to, the record now linked to it, and the file.
        salesforce_id: String,
        now_linked_to: String,
        origin: String,
    },
    /// A change of the record was parked until the record it refers to syncs.
    Waiting {
        reason: String,
    },
    /// One side's record was deleted, merged away or restored in its own system: recorded
    /// (ignored, as deletes are not propagated) and kept as that side's presence.
    Presence {
        reason: String,
        side: System,
        presence: Presence,
    },
}

/// The dead-letter queue a message given up on its last delivery waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetter {
    /// `changes`: a change the mapper could not map and queue.
    Changes,
    /// `writes`: a write the pusher could not make.
    Writes,
}

impl DeadLetter {
    /// What the ledger says of a message that failed on its last delivery (`deliveries`, the
    /// queue's maxReceiveCount) before SQS moved it here: the last error, where the message waits
    /// and what to do, so that no message reaches a dead-letter queue unrecorded.
    pub fn gave_up(self, deliveries: u32, error: &str) -> String {
        let (what, name) = match self {
            DeadLetter::Changes => ("change", "changes"),
            DeadLetter::Writes => ("write", "writes"),
        };
        format!(
            "gave up after {deliveries} deliveries: {error}; the {what} is kept in the {name} dead-letter queue: redrive it once the cause is fixed, or resync the record"
        )
    }
}

impl LedgerUpdate {
    /// A failure recorded as given up: `error` and what [`DeadLetter::gave_up`] adds.
    pub fn gave_up(deliveries: u32, error: &str, queue: DeadLetter) -> LedgerUpdate {
        LedgerUpdate::Failed {
            message: queue.gave_up(deliveries, error),
        }
    }

    /// This update on a message's last delivery: a failure becomes given up (its message the
    /// cause), anything else stays as it is.
    pub fn on_last_delivery(self, deliveries: u32, queue: DeadLetter) -> LedgerUpdate {
        match self {
            LedgerUpdate::Failed { message } => LedgerUpdate::gave_up(deliveries, &message, queue),
            other => other,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            LedgerUpdate::Synced { .. } => Outcome::Synced,
            LedgerUpdate::Failed { .. } => Outcome::Error,
            LedgerUpdate::Ignored { .. }
            | LedgerUpdate::InSync { .. }
            | LedgerUpdate::Parked { .. }
            | LedgerUpdate::Presence { .. } => Outcome::Ignored,
            LedgerUpdate::Imported { .. } | LedgerUpdate::Unlinked { .. } => Outcome::Imported,
            LedgerUpdate::Waiting { .. } => Outcome::Waiting,
        }
    }

    /// Whether the update still holds on `record` as it is now; one that no longer does is not
    /// applied, and the change it came from is mapped again. Only `InSync` can stop holding: when
    /// the write of another change from its source was queued since the change was mapped (that
    /// write may be an older change's, which a write of this one must follow), or a newer change
    /// from its source was written.
    pub fn holds_on(&self, record: Option<&LedgerRecord>) -> bool {
        let LedgerUpdate::InSync { seen, .. } = self else {
            return true;
        };
        record.is_some_and(|r| {
            r.mapped_at.get(&seen.source).copied() == seen.mapped_at
                && r.changed_at(seen.source).unwrap_or(i64::MIN) <= seen.changed_at_ms
        })
    }

    /// The history entry this update adds as the record's `version`.
    pub fn history_entry(&self, version: u64, at_ms: i64, run: &str) -> HistoryEntry {
        let message = match self {
            LedgerUpdate::Synced { .. } => None,
            LedgerUpdate::Failed { message } | LedgerUpdate::Waiting { reason: message } => {
                Some(message.clone())
            }
            LedgerUpdate::Ignored { reason }
            | LedgerUpdate::InSync { reason, .. }
            | LedgerUpdate::Parked { reason, .. }
            | LedgerUpdate::Presence { reason, .. } => Some(reason.clone()),
            LedgerUpdate::Imported {
                salesforce_id,
                origin,
            } => Some(format!("linked to {salesforce_id} by {origin}")),
            LedgerUpdate::Unlinked {
                salesforce_id,
                now_linked_to,
                origin,
            } => Some(format!(
                "unlinked from {salesforce_id}, which {origin} linked to {now_linked_to}"
            )),
        };
        HistoryEntry {
            version,
            at_ms,
            run: run.to_string(),
            outcome: self.outcome(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced(source: System, at: i64) -> LedgerUpdate {
        LedgerUpdate::Synced {
            salesforce_id: Some("001A".into()),
            source,
            source_changed_at_ms: at,
            fields: BTreeMap::new(),
        }
    }

    #[test]
    fn a_message_given_up_says_where_it_waits_and_what_to_do() {
        let LedgerUpdate::Failed { message } =
            LedgerUpdate::gave_up(5, "lookup failed: 503", DeadLetter::Changes)
        else {
            panic!("a give-up is a failure");
        };
        assert_eq!(
            message,
            "gave up after 5 deliveries: lookup failed: 503; the change is kept in the changes dead-letter queue: redrive it once the cause is fixed, or resync the record"
        );
        let writes = LedgerUpdate::gave_up(3, "x", DeadLetter::Writes);
        assert_eq!(writes.outcome(), Outcome::Error);
        assert!(format!("{writes:?}").contains("the write is kept in the writes dead-letter queue"));
        // On a last delivery a failure is given up with its own message as the cause; a success
        // stays a success.
        let failed = LedgerUpdate::Failed {
            message: "UNABLE_TO_LOCK_ROW".into(),
        };
        assert_eq!(
            failed.on_last_delivery(5, DeadLetter::Writes),
            LedgerUpdate::gave_up(5, "UNABLE_TO_LOCK_ROW", DeadLetter::Writes)
        );
        let ok = synced(System::Gainsight, 5);
        assert_eq!(ok.clone().on_last_delivery(5, DeadLetter::Writes), ok);
    }

    #[test]
    fn a_success_after_a_failure_keeps_both_statuses_apart() {
        let mut r = LedgerRecord::new("j", LedgerKey::Gainsight("G".into()));
        r.apply(&synced(System::Gainsight, 5), 10, "run-1");
        r.apply(
            &LedgerUpdate::Failed {
                message: "BAD".into(),
            },
            20,
            "run-2",
        );
        assert!(r.has_status(SyncStatus::Synced) && r.has_status(SyncStatus::Error));
        r.apply(&synced(System::Salesforce, 7), 30, "run-3");
        assert!(r.synced && !r.error);
        assert_eq!(
            r.last_error.as_deref(),
            Some("BAD"),
            "the last error stays for history"
        );
        assert_eq!(
            (r.gainsight_changed_at_ms, r.salesforce_changed_at_ms),
            (Some(5), Some(7))
        );
        assert_eq!((r.version, r.last_sync_at_ms), (3, Some(30)));
        let history: Vec<_> = r
            .history
            .iter()
            .map(|h| (h.version, h.run.as_str(), h.outcome, h.message.as_deref()))
            .collect();
        assert_eq!(
            history,
            [
                (1, "run-1", Outcome::Synced, None),
                (2, "run-2", Outcome::Error, Some("BAD")),
                (3, "run-3", Outcome::Synced, None)
            ]
        );
    }

    #[test]
    fn history_keeps_the_last_ten_outcomes() {
        let mut r = LedgerRecord::new("j", LedgerKey::Gainsight("G".into()));
        for i in 0..25 {
            r.apply(&synced(System::Gainsight, i), i, &format!("run-{i}"));
        }
        assert_eq!(r.history.len(), HISTORY_KEPT);
        assert_eq!(r.history[0].version, 16);
        assert_eq!(r.history[9].run, "run-24");
    }

    #[test]
    fn ignored_changes_are_counted_without_touching_the_statuses() {
        let mut r = LedgerRecord::new("j", LedgerKey::SalesforceOnly("001A".into()));
        r.apply(
            &LedgerUpdate::Ignored {
                reason: "echo".into(),
            },
            1,
            "",
        );
        r.apply(
            &LedgerUpdate::Ignored {
                reason: "stale".into(),
            },
            2,
            "",
        );
        assert_eq!(
            (r.ignored_count, r.last_ignored_reason.as_deref()),
            (2, Some("stale"))
        );
        assert!(!r.synced && !r.error);
    }

    fn in_sync(at: i64, mapped_at: Option<i64>) -> LedgerUpdate {
        LedgerUpdate::InSync {
            reason: "no mapped field changed".into(),
            seen: InSync {
                source: System::Gainsight,
                changed_at_ms: at,
                mapped_at,
            },
        }
    }

    #[test]
    fn a_change_found_in_sync_makes_older_changes_of_its_source_stale() {
        let mut r = LedgerRecord::new("j", LedgerKey::Gainsight("G".into()));
        r.apply(&synced(System::Gainsight, 100), 1, "");
        r.apply(&in_sync(300, None), 2, "");
        assert_eq!(r.changed_at(System::Gainsight), Some(300));
        assert_eq!(r.changed_at(System::Salesforce), None);
        assert_eq!((r.ignored_count, r.synced), (1, true));
        // An older observation never moves the time back.
        r.apply(&in_sync(200, None), 3, "");
        assert_eq!(r.changed_at(System::Gainsight), Some(300));
    }

    #[test]
    fn in_sync_holds_only_while_nothing_of_its_source_was_queued_or_written_since() {
        let mut r = LedgerRecord::new("j", LedgerKey::Gainsight("G".into()));
        r.apply(&synced(System::Gainsight, 100), 1, "");
        assert!(in_sync(300, None).holds_on(Some(&r)));
        assert!(
            !in_sync(300, None).holds_on(None),
            "no record, nothing in sync"
        );
        // The write of the change made at 200 was queued after the change at 300 was mapped.
        r.mapped(System::Gainsight, 200);
        assert!(!in_sync(300, None).holds_on(Some(&r)));
        assert!(in_sync(300, Some(200)).holds_on(Some(&r)));
        // A newer change from the source was written since.
        r.apply(&synced(System::Gainsight, 400), 2, "");
        assert!(!in_sync(300, Some(200)).holds_on(Some(&r)));
        assert!(LedgerUpdate::Ignored { reason: "x".into() }.holds_on(None));
    }
}
