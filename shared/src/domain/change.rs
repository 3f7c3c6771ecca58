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
    /// Taken back out of the recycle bin (a Salesforce undelete).
    Restored,
}

/// Where a change came from; kept for the run log and for "why didn't this sync?".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOrigin {
    Webhook,
    Poller,
    Resync,
    /// A Salesforce change event relayed through EventBridge.
    ChangeDataCapture,
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
    /// Where the change's values come from: the message, or the source record read back.
    #[serde(default, skip_serializing_if = "Reading::is_carried")]
    pub read: Reading,
    /// Who made the change, when the source says (a change event's `commitUser`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
    /// The Salesforce merge this change is part of, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<super::merge::Merge>,
}

/// Where a change's values come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// The message carries them (a signed Gainsight event, a change event, a poll).
    #[default]
    Carried,
    /// The change is only a hint that the record changed (an Outbound Message, which nothing
    /// signs; a Change Data Capture gap): its values are to be read from the source.
    Due,
    /// Read back from the source: a snapshot of the record as it is now, as a poll reads one.
    Done,
}

impl Reading {
    pub fn is_carried(&self) -> bool {
        *self == Reading::Carried
    }
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
    /// notification) under the source's own event id. No source time later than the change's
    /// arrival is believed: a clock ahead (or a forged time) would make every genuine change
    /// after it look stale.
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
            occurred_at_ms: occurred_at_ms.min(received_at_ms),
            fields: record.fields,
            changed_fields: None,
            origin: ChangeOrigin::Webhook,
            received_at_ms,
            participants: None,
            load: None,
            waiting_since_ms: None,
            read: Reading::Carried,
            changed_by: None,
            merge: None,
        }
    }

    /// A hint that `id` of `object` changed in Salesforce, to be read there before it is mapped.
    pub fn salesforce_hint(object: &str, id: &str, event_id: String, received_at_ms: i64) -> Self {
        let mut fields = Fields::new();
        fields.insert("Id".into(), serde_json::Value::String(id.to_string()));
        let record = SourceRecord {
            source: System::Salesforce,
            object: object.to_string(),
            id: id.to_string(),
            fields,
        };
        let mut change = Self::pushed(
            record,
            event_id,
            Operation::Updated,
            received_at_ms,
            received_at_ms,
        );
        change.read = Reading::Due;
        change
    }

    /// This hint completed with the record as its source shows it now (`None`: the source no
    /// longer finds it, so it was deleted). Its time is the record's own modification stamp,
    /// never later than the hint's arrival; created when created and last modified agree. A
    /// restore found there stays a restore, as of its event.
    pub fn with_current(mut self, current: Option<Fields>) -> Self {
        self.read = Reading::Done;
        let Some(fields) = current else {
            self.operation = Operation::Deleted;
            return self;
        };
        if self.operation == Operation::Restored {
            self.fields = fields;
            return self;
        }
        let stamp = |f: &str| {
            fields
                .get(f)
                .and_then(serde_json::Value::as_str)
                .and_then(crate::time::parse_ms)
        };
        let modified = stamp(SALESFORCE_MODIFIED).or_else(|| stamp("LastModifiedDate"));
        self.operation = match (stamp("CreatedDate"), stamp("LastModifiedDate")) {
            (Some(c), Some(m)) if c == m => Operation::Created,
            _ => Operation::Updated,
        };
        if let Some(at) = modified {
            self.occurred_at_ms = at.min(self.received_at_ms);
        }
        self.fields = fields;
        self
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

    /// A record as read earlier (a first load's plan), queued by run `run` as of when its system
    /// says it was last modified (never later than now): a change of it already written since
    /// then makes this one stale, so an older read never sets back a newer value.
    pub fn forced_as_read(record: SourceRecord, run: &str, now_ms: i64) -> Self {
        let modified = modified_ms(record.source, &record.fields);
        let mut change = Self::forced(record, run, now_ms);
        if let Some(at) = modified {
            change.occurred_at_ms = at.min(now_ms);
        }
        change
    }
}

/// When a record of `source` was last modified, by its system's stamp: Gainsight's
/// `ModifiedDate` (epoch ms, or RFC 3339 text), Salesforce's `SystemModstamp`, else its
/// `LastModifiedDate`.
pub fn modified_ms(source: System, fields: &Fields) -> Option<i64> {
    let stamp = |f: &str| match fields.get(f)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => crate::time::parse_ms(s),
        _ => None,
    };
    match source {
        System::Gainsight => stamp(GAINSIGHT_MODIFIED),
        System::Salesforce => stamp(SALESFORCE_MODIFIED).or_else(|| stamp("LastModifiedDate")),
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

/// Whether `id` has the shape of a Gainsight id (GSID): letters and digits, at most 64. A GSID
/// becomes a ledger key as it is, so one with a prefix, a colon or whitespace must not get in.
pub fn is_gainsight_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gainsight_ids_are_letters_and_digits() {
        assert!(is_gainsight_id("1P02IPKB4QHMEDH3QBFU1DY1P4I8BTT6RAL8"));
        for bad in [
            "",
            "sf:001000000000001AAA",
            " 1P02ABC",
            "1P02 ABC",
            "1P02/..",
            &"A".repeat(65),
        ] {
            assert!(!is_gainsight_id(bad), "{bad:?}");
        }
    }

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

    #[test]
    fn no_source_time_is_later_than_the_arrival() {
        let far = 4_102_444_800_000; // 2100-01-01
        let pushed = ChangeEvent::pushed(record(), "e".into(), Operation::Updated, far, 50);
        assert_eq!(pushed.occurred_at_ms, 50);
    }

    fn current(created: &str, modified: &str) -> Fields {
        serde_json::from_value(serde_json::json!({
            "Id": "0015g00000000AAAAA", "Name": "Acme",
            "CreatedDate": created, "LastModifiedDate": modified, "SystemModstamp": modified,
        }))
        .unwrap()
    }

    #[test]
    fn a_hint_takes_the_values_and_time_of_the_record_read_from_its_source() {
        let at = crate::time::parse_ms("2026-12-05T10:00:00.000Z").unwrap();
        let hint = ChangeEvent::salesforce_hint("Account", "0015g00000000AAAAA", "n".into(), at);
        assert_eq!(hint.read, Reading::Due);
        let earlier = "2026-12-05T09:59:58.000Z";
        let updated = hint
            .clone()
            .with_current(Some(current("2026-01-01T00:00:00.000Z", earlier)));
        assert_eq!(updated.read, Reading::Done);
        assert_eq!(updated.operation, Operation::Updated);
        assert_eq!(updated.fields["Name"], "Acme");
        assert_eq!(updated.occurred_at_ms, at - 2_000);
        let created = hint.clone().with_current(Some(current(earlier, earlier)));
        assert_eq!(created.operation, Operation::Created);
        // A modification stamp after the hint arrived is not believed.
        let ahead = "2100-01-01T00:00:00.000Z";
        let clamped = hint.clone().with_current(Some(current(earlier, ahead)));
        assert_eq!(clamped.occurred_at_ms, at);
        let gone = hint.clone().with_current(None);
        assert_eq!(gone.operation, Operation::Deleted);
        // A restore (a gap's undelete) found there stays one, as of its event.
        let mut restore = hint;
        restore.operation = Operation::Restored;
        let found = restore
            .clone()
            .with_current(Some(current(earlier, earlier)));
        assert_eq!(
            (found.operation, found.occurred_at_ms),
            (Operation::Restored, at)
        );
        let deleted_since = restore.with_current(None);
        assert_eq!(deleted_since.operation, Operation::Deleted);
    }

    #[test]
    fn a_change_as_read_is_as_of_its_records_stamp_never_later_than_now() {
        let mut gs = record();
        gs.fields
            .insert(GAINSIGHT_MODIFIED.into(), serde_json::json!(1_000));
        assert_eq!(
            ChangeEvent::forced_as_read(gs.clone(), "r", 5_000).occurred_at_ms,
            1_000
        );
        gs.fields
            .insert(GAINSIGHT_MODIFIED.into(), serde_json::json!(9_000));
        assert_eq!(
            ChangeEvent::forced_as_read(gs, "r", 5_000).occurred_at_ms,
            5_000
        );
        let sf = SourceRecord {
            source: System::Salesforce,
            object: "Account".into(),
            id: "001".into(),
            fields: serde_json::json!({"LastModifiedDate": "1970-01-01T00:00:02.000Z",
                SALESFORCE_MODIFIED: "1970-01-01T00:00:03.000Z"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        };
        let change = ChangeEvent::forced_as_read(sf, "r", 5_000);
        assert_eq!(
            (change.occurred_at_ms, change.origin),
            (3_000, ChangeOrigin::Resync)
        );
        assert_eq!(
            ChangeEvent::forced_as_read(record(), "r", 5_000).occurred_at_ms,
            5_000
        );
    }
}
