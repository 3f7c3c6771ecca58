//! A write command: what the pusher must write to one record of the target system.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ConflictRule, FieldState, Fields, LedgerKey, System};

/// What the pusher needs to settle a conflict on one bi-directional field that only shows once
/// the command is about to be written (the other side's change was in flight when it was mapped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldConflict {
    pub rule: ConflictRule,
    /// The field this command writes.
    pub target_field: String,
    /// The field and value on the source side, to restore there if this side wins after the
    /// other side's value overwrote it.
    pub source_object: String,
    pub source_field: String,
    pub source_value: serde_json::Value,
}

/// A mapped field the mapper found unchanged since the last sync, carried along unwritten: a write
/// of the same record from the same side may land between the mapping and this write (it was in
/// flight, so the ledger did not show it yet), and then this newer snapshot's value must be
/// written after all. The pusher tells again under the record's lease.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unchanged {
    /// The field this command would write.
    pub target_field: String,
    /// The target value.
    pub value: serde_json::Value,
    /// The field's ledger state once written.
    pub state: FieldState,
}

/// What the write may do, from the job's event actions.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Create, or update the matching record.
    #[default]
    Upsert,
    /// Create only: an existing match is an error.
    Create,
    /// Update only: no match means nothing is written (logged as ignored).
    Update,
}

/// How the target record is found.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum RecordKey {
    /// Upsert on an external-ID field (Salesforce) or key fields (Gainsight).
    ExternalId { field: String, value: String },
    /// Update the record with this id.
    Id { value: String },
}

/// A field of the source record to fill with the id of the twin a write creates: the GSID into
/// a Salesforce external-ID field, or the Salesforce Id into a Gainsight field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writeback {
    pub system: System,
    pub object: String,
    pub field: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriteCommand {
    pub job: String,
    pub target: System,
    /// Target object API name, e.g. `Account`.
    pub object: String,
    pub key: RecordKey,
    #[serde(default)]
    pub mode: WriteMode,
    /// Target field values to write, by target API name (the key field included for upserts).
    pub fields: Fields,
    /// The ledger key of the record pair.
    pub ledger_key: LedgerKey,
    /// The Salesforce id of the pair, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salesforce_id: Option<String>,
    /// Field states to record in the ledger once the write is acknowledged.
    #[serde(default)]
    pub field_states: BTreeMap<String, FieldState>,
    /// After the write, put the target's id into this field of the source record, so later
    /// changes of either side carry the pairing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writeback: Option<Writeback>,
    /// The system the change came from.
    pub source: System,
    /// Bi-directional fields written, by ledger field name, with their conflict rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conflicts: BTreeMap<String, FieldConflict>,
    /// Source event, for the run log.
    pub event_id: String,
    pub source_changed_at_ms: i64,
    /// When the originating change was accepted (freshness).
    pub received_at_ms: i64,
    /// Files of a Timeline activity to upload and link to the written Task or Event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<super::timeline::Attachment>,
    /// What the write leaves out on purpose (an attachment over 25 MB), recorded with its outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// The bulk load (backfill or import) the write belongs to, whose Salesforce upserts go out
    /// together (see `load`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<super::load::LoadId>,
    /// Mapped fields found unchanged since the last sync, by ledger field name (see
    /// [`Unchanged`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unchanged: BTreeMap<String, Unchanged>,
}

impl RecordKey {
    /// The value the record is found by.
    pub fn value(&self) -> &str {
        match self {
            RecordKey::ExternalId { value, .. } | RecordKey::Id { value } => value,
        }
    }
}

impl WriteCommand {
    /// Commands with the same batch key can go out in one API call.
    pub fn batch_key(&self) -> (System, &str, Option<&str>, WriteMode) {
        let field = match &self.key {
            RecordKey::ExternalId { field, .. } => Some(field.as_str()),
            RecordKey::Id { .. } => None,
        };
        (self.target, self.object.as_str(), field, self.mode)
    }

    /// The fields to write to a record addressed by its id: `fields` and `id_field` set to the
    /// key's value.
    pub fn fields_with_id(&self, id_field: &str) -> Fields {
        let mut fields = self.fields.clone();
        fields.insert(id_field.into(), self.key.value().into());
        fields
    }

    /// Drops the bi-directional field `state_key` from the write (its conflict was lost); true if
    /// nothing mapped is left to write.
    pub fn drop_field(&mut self, state_key: &str) -> bool {
        if let Some(conflict) = self.conflicts.remove(state_key) {
            self.fields.remove(&conflict.target_field);
        }
        self.field_states.remove(state_key);
        self.field_states.is_empty()
    }

    /// Identity of the target record: two commands with the same identity write the same record.
    /// It is the pair's, not the key's: the same record may be addressed by its external id in one
    /// write and by its Id in another.
    pub fn record_identity(&self) -> (System, &str, &LedgerKey) {
        (self.target, self.job.as_str(), &self.ledger_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_addressed_by_id_carries_the_key_value() {
        let mut fields = Fields::new();
        fields.insert("Name".into(), "Acme".into());
        let cmd = WriteCommand {
            job: "j".into(),
            target: System::Gainsight,
            object: "Company".into(),
            key: RecordKey::Id {
                value: "1P02".into(),
            },
            mode: WriteMode::Update,
            fields,
            ledger_key: LedgerKey::Gainsight("1P02".into()),
            salesforce_id: None,
            field_states: BTreeMap::new(),
            writeback: None,
            source: System::Salesforce,
            conflicts: BTreeMap::new(),
            event_id: "e".into(),
            source_changed_at_ms: 0,
            received_at_ms: 0,
            attachments: Vec::new(),
            skipped: Vec::new(),
            unchanged: Default::default(),
            load: None,
        };
        let addressed = cmd.fields_with_id("Gsid");
        assert_eq!(
            (addressed["Gsid"].as_str(), addressed["Name"].as_str()),
            (Some("1P02"), Some("Acme"))
        );
    }
}
