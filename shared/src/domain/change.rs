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
}
