//! Salesforce Change Data Capture events, as Event Relay puts them on EventBridge and the rule
//! sends them to `changes`, turned into the sync's changes: the fields an event carries (never
//! the ones it omits), its nulled fields as null, one change per record it names, gaps read back
//! from Salesforce, and the integration user's own changes dropped as echoes.

use serde::Deserialize;
use serde_json::Value;

use super::change::{ChangeEvent, ChangeOrigin, Operation, SourceRecord, System};
use super::Fields;

/// An event as EventBridge delivers it: the envelope, and Event Relay's `detail`.
#[derive(Debug, Deserialize)]
pub struct RelayedEvent {
    /// EventBridge's id of the event.
    pub id: String,
    /// The change event's name, e.g. `AccountChangeEvent`.
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub detail: RelayDetail,
}

#[derive(Debug, Deserialize)]
pub struct RelayDetail {
    pub payload: Fields,
    /// The change event's own UUID, the same however often it is relayed.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, rename = "replayId")]
    pub replay_id: Option<Value>,
}

/// The header every change event carries.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEventHeader {
    pub entity_name: String,
    #[serde(default)]
    pub record_ids: Vec<String>,
    pub change_type: ChangeType,
    /// Epoch milliseconds of the commit.
    pub commit_timestamp: i64,
    #[serde(default)]
    pub commit_number: Option<i64>,
    #[serde(default)]
    pub commit_user: Option<String>,
    #[serde(default)]
    pub sequence_number: Option<i64>,
    #[serde(default)]
    pub transaction_key: Option<String>,
    #[serde(default)]
    pub changed_fields: Vec<String>,
    #[serde(default)]
    pub nulled_fields: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeType {
    Create,
    Update,
    Delete,
    Undelete,
    GapCreate,
    GapUpdate,
    GapDelete,
    GapUndelete,
    GapOverflow,
}

/// What an event means for the sync.
#[derive(Debug, PartialEq)]
pub enum Relayed {
    /// One change per record the event names.
    Changes(Vec<ChangeEvent>),
    /// Too many changes for events (`GAP_OVERFLOW`): the object's records changed since
    /// `since_ms` are to be read again.
    Overflow { object: String, since_ms: i64 },
    /// The integration user's own change: an echo of a write of the sync.
    Echo { object: String, records: usize },
}

/// Why a message is not a change event the sync can use.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CdcError {
    #[error("the change event has no ChangeEventHeader: {0}")]
    NoHeader(String),
    #[error("{object} change event {event} names no record")]
    NoRecords { object: String, event: String },
    #[error("{object} change event {event}: record id {id:?} is not a Salesforce id")]
    BadId {
        object: String,
        event: String,
        id: String,
    },
}

/// Whether a message body is an EventBridge event rather than one of the sync's own changes.
pub fn is_relayed(body: &str) -> bool {
    body.contains("\"detail-type\"")
}

/// The sync's reading of `event`, received at `received_at_ms`; `integration_user` is the Id the
/// sync writes to Salesforce as.
pub fn changes_of(
    event: RelayedEvent,
    integration_user: Option<&str>,
    received_at_ms: i64,
) -> Result<Relayed, CdcError> {
    let mut payload = event.detail.payload;
    let header = payload
        .remove("ChangeEventHeader")
        .ok_or_else(|| CdcError::NoHeader(event.detail_type.clone()))?;
    let header: ChangeEventHeader =
        serde_json::from_value(header).map_err(|e| CdcError::NoHeader(e.to_string()))?;
    let object = header.entity_name.clone();
    // No commit time later than the event's arrival is believed.
    let at_ms = header.commit_timestamp.min(received_at_ms);
    if header.change_type == ChangeType::GapOverflow {
        return Ok(Relayed::Overflow {
            object,
            since_ms: at_ms,
        });
    }
    let user = header.commit_user.as_deref();
    if integration_user.is_some_and(|u| !u.is_empty() && user == Some(u)) {
        let records = header.record_ids.len();
        return Ok(Relayed::Echo { object, records });
    }
    let event_key = event.detail.id.unwrap_or(event.id);
    check_ids(&header, &event_key)?;
    let fields = values(payload, &header.nulled_fields);
    let changes = (header.record_ids.iter())
        .map(|id| change(&header, &event_key, id, &fields, at_ms, received_at_ms))
        .collect();
    Ok(Relayed::Changes(changes))
}

fn check_ids(header: &ChangeEventHeader, event: &str) -> Result<(), CdcError> {
    let object = header.entity_name.clone();
    if header.record_ids.is_empty() {
        let event = event.to_string();
        return Err(CdcError::NoRecords { object, event });
    }
    match (header.record_ids.iter()).find(|id| !super::change::is_salesforce_id(id)) {
        Some(id) => Err(CdcError::BadId {
            object,
            event: event.to_string(),
            id: id.clone(),
        }),
        None => Ok(()),
    }
}

/// The event's field values: compound fields (a Contact's `Name`, an address) as their parts,
/// nulled fields as null.
fn values(payload: Fields, nulled: &[String]) -> Fields {
    let mut fields = Fields::new();
    for (name, value) in payload {
        match value {
            Value::Object(parts) => {
                fields.extend(parts.into_iter().filter(|(_, v)| !v.is_null()));
            }
            Value::Null => {}
            value => {
                fields.insert(name, value);
            }
        }
    }
    for name in nulled {
        // A compound part is named `Name.FirstName`: its field is the part.
        let field = name.rsplit('.').next().unwrap_or(name);
        fields.insert(field.to_string(), Value::Null);
    }
    fields
}

/// The change of record `id` the event says.
fn change(
    header: &ChangeEventHeader,
    event: &str,
    id: &str,
    fields: &Fields,
    at_ms: i64,
    received_at_ms: i64,
) -> ChangeEvent {
    let event_id = format!("cdc/{event}/{id}");
    let object = &header.entity_name;
    let (operation, reread) = match header.change_type {
        ChangeType::Create => (Operation::Created, false),
        ChangeType::Update => (Operation::Updated, false),
        ChangeType::Delete => (Operation::Deleted, false),
        ChangeType::Undelete => (Operation::Restored, false),
        // Every gap is read back as the record is now; a restore found there is recorded as one.
        ChangeType::GapUndelete => (Operation::Restored, true),
        _ => (Operation::Updated, true),
    };
    let mut record_fields = if reread {
        Fields::new()
    } else {
        fields.clone()
    };
    record_fields.insert("Id".into(), Value::String(id.to_string()));
    let record = SourceRecord {
        source: System::Salesforce,
        object: object.clone(),
        id: id.to_string(),
        fields: record_fields,
    };
    let mut change = ChangeEvent::pushed(record, event_id, operation, at_ms, received_at_ms);
    change.origin = ChangeOrigin::ChangeDataCapture;
    if reread {
        change.read = super::change::Reading::Due;
    }
    change.changed_by = header.commit_user.clone();
    if header.change_type == ChangeType::Update {
        let mut changed = header.changed_fields.clone();
        for nulled in &header.nulled_fields {
            if !changed.contains(nulled) {
                changed.push(nulled.clone());
            }
        }
        change.changed_fields = Some(changed);
    }
    change
}

#[cfg(test)]
mod tests;
