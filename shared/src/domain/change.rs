//! A change observed in one system, as queued on `changes` by the webhook, poller or resync.

use serde::{Deserialize, Serialize};

use super::Fields;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum System {
    Gainsight,
    Salesforce,
}

impl System {
    pub fn other(self) -> System {
        match self {
            System::Gainsight => System::Salesforce,
            System::Salesforce => System::Gainsight,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            System::Gainsight => "gainsight",
            System::Salesforce => "salesforce",
        }
    }

    /// The system's name as people write it.
    pub fn label(self) -> &'static str {
        match self {
            System::Gainsight => "Gainsight",
            System::Salesforce => "Salesforce",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Created,
    Updated,
    Deleted,
}

/// Where a change came from; kept for the run log and for "why didn't this sync?".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOrigin {
    Webhook,
    Poller,
    Resync,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The source's own id for this event (Gainsight event id, Salesforce notification id, or a
    /// poller/resync id); the dedup key.
    pub event_id: String,
    pub source: System,
    /// Source object API name, e.g. `Company` or `Account`.
    pub object: String,
    /// Id of the record in the source system (Gainsight GSID or Salesforce Id).
    pub record_id: String,
    pub operation: Operation,
    /// When the source says the change happened (epoch ms).
    pub occurred_at_ms: i64,
    /// Current values of the record's fields, as sent by the source.
    pub fields: Fields,
    /// Fields the source reports as changed, when it says; `None` means unknown (treat all as changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_fields: Option<Vec<String>>,
    pub origin: ChangeOrigin,
    /// When we accepted it (epoch ms): the start of the freshness clock.
    pub received_at_ms: i64,
    /// A Timeline activity's Salesforce links, resolved for the whole poll window at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<super::timeline::Participants>,
    /// The bulk load (a backfill's or an import's run) the change was read for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<super::load::LoadId>,
    /// Since when the change has waited for the record it refers to, when it is replayed from
    /// where it was parked (see `domain::waiting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since_ms: Option<i64>,
}

/// A record as its source shows it: which one, and its current values.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRecord {
    pub source: System,
    pub object: String,
    pub id: String,
    pub fields: Fields,
}

impl ChangeEvent {
    /// A change a source pushed to the webhook (a Gainsight event, an Outbound Message
    /// notification) under the source's own event id.
    pub fn pushed(
        record: SourceRecord,
        event_id: String,
        operation: Operation,
        occurred_at_ms: i64,
        received_at_ms: i64,
    ) -> Self {
        Self {
            event_id,
            source: record.source,
            object: record.object,
            record_id: record.id,
            operation,
            occurred_at_ms,
            fields: record.fields,
            changed_fields: None,
            origin: ChangeOrigin::Webhook,
            received_at_ms,
            participants: None,
            load: None,
            waiting_since_ms: None,
        }
    }

    /// A record version the poller read for `job`: one event id per version, so overlapping
    /// windows that read it again are deduplicated.
    pub fn polled(record: SourceRecord, job: &str, modified_ms: i64, received_at_ms: i64) -> Self {
        let event_id = format!("poll/{job}/{}@{modified_ms}", record.id);
        let mut change = Self::pushed(
            record,
            event_id,
            Operation::Updated,
            modified_ms,
            received_at_ms,
        );
        change.origin = ChangeOrigin::Poller;
        change
    }

    /// A record's current state queued by resync run `run`: it bypasses echo suppression.
    pub fn forced(record: SourceRecord, run: &str, now_ms: i64) -> Self {
        let event_id = format!("{run}/{}", record.id);
        let mut change = Self::pushed(record, event_id, Operation::Updated, now_ms, now_ms);
        change.origin = ChangeOrigin::Resync;
        change
    }
}

/// The field Gainsight stamps on every modification (epoch ms in the data API).
pub const GAINSIGHT_MODIFIED: &str = "ModifiedDate";
/// The field Salesforce stamps on every modification, including system ones.
pub const SALESFORCE_MODIFIED: &str = "SystemModstamp";

/// Whether `id` has the shape of a Salesforce record id: 15 or 18 letters and digits. Only such ids
/// may be put in a SOQL `Id` condition (Salesforce refuses the query otherwise).
pub fn is_salesforce_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SourceRecord {
        SourceRecord {
            source: System::Gainsight,
            object: "Company".into(),
            id: "G1".into(),
            fields: Fields::new(),
        }
    }

    #[test]
    fn each_origin_has_its_own_event_ids() {
        let polled = ChangeEvent::polled(record(), "company_account", 42, 50);
        assert_eq!(polled.event_id, "poll/company_account/G1@42");
        assert_eq!(
            (polled.origin, polled.occurred_at_ms),
            (ChangeOrigin::Poller, 42)
        );
        let forced = ChangeEvent::forced(record(), "resync-9", 9);
        assert_eq!(
            (forced.event_id.as_str(), forced.origin),
            ("resync-9/G1", ChangeOrigin::Resync)
        );
        let pushed = ChangeEvent::pushed(record(), "e".into(), Operation::Created, 1, 2);
        assert_eq!(
            (pushed.operation, pushed.received_at_ms),
            (Operation::Created, 2)
        );
    }
}
