//! The sync ledger: one record per synced record pair and job, answering "did this sync, and if
//! not, why?".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::System;

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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerRecord {
    pub job: String,
    /// The ledger key: the Gainsight id, or `sf:{Salesforce Id}` for a Salesforce record that has
    /// no Gainsight twin yet.
    pub gainsight_id: String,
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
    pub version: u64,
}

impl LedgerRecord {
    pub fn changed_at(&self, source: System) -> Option<i64> {
        match source {
            System::Gainsight => self.gainsight_changed_at_ms,
            System::Salesforce => self.salesforce_changed_at_ms,
        }
    }

    pub fn has_status(&self, status: SyncStatus) -> bool {
        match status {
            SyncStatus::Synced => self.synced,
            SyncStatus::Error => self.error,
        }
    }
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
}
