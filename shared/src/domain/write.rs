//! A write command: what the pusher must write to one record of the target system.

use serde::{Deserialize, Serialize};

use super::{Fields, System};

/// How the target record is found.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum RecordKey {
    /// Upsert on an external-ID field (Salesforce) or key fields (Gainsight).
    ExternalId { field: String, value: String },
    /// Update the record with this id.
    Id { value: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriteCommand {
    pub job: String,
    pub target: System,
    /// Target object API name, e.g. `Account`.
    pub object: String,
    pub key: RecordKey,
    /// Target field values to write, by target API name (the key field included for upserts).
    pub fields: Fields,
    /// The Gainsight id of the record pair: the ledger key.
    pub gainsight_id: String,
    /// Hash of `fields`, stored in the ledger after a successful write for echo suppression.
    pub values_hash: String,
    /// Source event, for the run log.
    pub event_id: String,
    pub source_changed_at_ms: i64,
    /// When the originating change was accepted (freshness).
    pub received_at_ms: i64,
}

impl WriteCommand {
    /// Commands with the same batch key can go out in one API call.
    pub fn batch_key(&self) -> (System, &str, Option<&str>) {
        let field = match &self.key {
            RecordKey::ExternalId { field, .. } => Some(field.as_str()),
            RecordKey::Id { .. } => None,
        };
        (self.target, self.object.as_str(), field)
    }

    /// Identity of the target record: two commands with the same identity write the same record.
    pub fn record_identity(&self) -> (System, &str, &RecordKey) {
        (self.target, self.object.as_str(), &self.key)
    }
}
