//! The sync ledger: one record per synced record pair and job, answering "did this sync, and if
//! not, why?".

use serde::{Deserialize, Serialize};

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
    /// Hash of the values last written, to recognise echoes of our own writes.
    pub values_hash: Option<String>,
    /// Source timestamp of the change last written: older changes are stale.
    pub source_changed_at_ms: Option<i64>,
    pub ignored_count: u64,
    pub last_ignored_reason: Option<String>,
    pub version: u64,
}

impl LedgerRecord {
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
        values_hash: String,
        source_changed_at_ms: i64,
    },
    Failed {
        message: String,
    },
    Ignored {
        reason: String,
    },
}
