//! Change Data Capture through Event Relay: every create, update, delete and undelete made in
//! the org (through the API or by a person) is published as a change event
//! (`<Object>ChangeEvent`: the `ChangeEventHeader` and the changed fields' new values) and put
//! on the relay's partner event bus with `PutPartnerEvents`, in the envelope Event Relay gives
//! it: `detail` = `{payload, schemaId, id, replayId}`. Updates of one call that set the same
//! values are one event with many `recordIds`, 200 at most, as a trigger sees a load in
//! transactions of 200. Switches turn the next events into gap or overflow events, and re-send
//! the last ones (a relay resumed with `ReplayRecovery: EARLIEST`).

use std::collections::VecDeque;
use std::sync::Weak;

use super::*;

/// Records an event names at most.
const IDS_PER_EVENT: usize = 200;
/// Events kept to be re-sent.
const KEPT: usize = 10_000;

/// Where the org's change events go.
#[derive(Clone, Debug)]
pub struct Relay {
    /// The EventBridge endpoint (`AWS_ENDPOINT_URL_EVENTS`).
    pub endpoint: String,
    /// The partner event source, and the bus associated with it, of the same name.
    pub bus: String,
}

/// The relay's state in the org.
#[derive(Default)]
pub(super) struct RelayState {
    pub(super) relay: Option<Relay>,
    /// The next this many events are sent as `GAP_<type>` events (no field values).
    pub(super) gaps: u32,
    /// The next event is sent as one `GAP_OVERFLOW` for its object instead.
    pub(super) overflows: u32,
    pub(super) commit_number: u64,
    pub(super) replay_id: u64,
    /// The last events sent, oldest first: (detail-type, detail).
    pub(super) sent: VecDeque<(String, Value)>,
    pub(super) published: u64,
}

/// What a change did to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChangeKind {
    Create,
    Update,
    Delete,
    Undelete,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "CREATE",
            ChangeKind::Update => "UPDATE",
            ChangeKind::Delete => "DELETE",
            ChangeKind::Undelete => "UNDELETE",
        }
    }
}

/// One record's change: its id, and the new values of the fields it changed.
#[derive(Clone, Debug)]
pub(super) struct RecordChange {
    pub(super) id: String,
    pub(super) kind: ChangeKind,
    pub(super) fields: Record,
}

impl RecordChange {
    /// The change from `before` (none: created) to `after`, or `None` if nothing changed.
    pub(super) fn between(before: Option<&Record>, after: &Record) -> Option<Self> {
        let id = after.get("Id").and_then(Value::as_str)?.to_string();
        let (kind, fields) = match before {
            None => (ChangeKind::Create, after.clone()),
            Some(before) => {
                let changed: Record = (after.iter())
                    .filter(|(k, v)| before.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (ChangeKind::Update, changed)
            }
        };
        Some(Self { id, kind, fields })
    }

    pub(super) fn of(kind: ChangeKind, id: &str) -> Self {
        Self {
            id: id.to_string(),
            kind,
            fields: Record::new(),
        }
    }
}

/// Fields every change sets that make no difference to grouping.
fn is_stamp(field: &str) -> bool {
    matches!(
        field,
        "LastModifiedDate" | "SystemModstamp" | "LastModifiedById" | "Id"
    )
}

impl Org {
    /// The change events of `changes` of `object` made by `author`, to be put on the bus.
    pub(super) fn change_events(
        &mut self,
        object: &str,
        changes: Vec<RecordChange>,
        author: Author,
    ) -> Vec<(String, Value)> {
        if self.relay.relay.is_none() || changes.is_empty() {
            return Vec::new();
        }
        let transaction = uuid::Uuid::new_v4().to_string();
        let now = self.now();
        self.relay.commit_number += 1;
        let commit = self.relay.commit_number;
        let mut events = Vec::new();
        for (sequence, group) in group(changes).into_iter().enumerate() {
            let header = json!({
                "entityName": object,
                "recordIds": group.ids,
                "changeType": group.kind.as_str(),
                "changeOrigin": "com/salesforce/api/rest/62.0",
                "transactionKey": transaction,
                "sequenceNumber": sequence + 1,
                "commitTimestamp": now,
                "commitNumber": commit,
                "commitUser": author.user_id(),
                "changedFields": group.changed,
                "nulledFields": group.nulled,
                "diffFields": [],
            });
            events.push(self.detail(object, header, group.fields));
        }
        events
    }

    /// One event's `detail`, turned into a gap or overflow event when a switch says so.
    fn detail(&mut self, object: &str, mut header: Value, fields: Record) -> (String, Value) {
        let mut payload = fields;
        if self.relay.overflows > 0 {
            self.relay.overflows -= 1;
            header["changeType"] = json!("GAP_OVERFLOW");
            header["recordIds"] = json!([]);
            payload = Record::new();
        } else if self.relay.gaps > 0 {
            self.relay.gaps -= 1;
            let kind = header["changeType"]
                .as_str()
                .unwrap_or("UPDATE")
                .to_string();
            header["changeType"] = json!(format!("GAP_{kind}"));
            for list in ["changedFields", "nulledFields", "diffFields"] {
                header[list] = json!([]);
            }
            payload = Record::new();
        }
        payload.insert("ChangeEventHeader".into(), header);
        self.relay.replay_id += 1;
        let detail = json!({
            "payload": payload,
            "schemaId": format!("{object}ChangeEvent-schema-1"),
            "id": uuid::Uuid::new_v4().to_string(),
            "replayId": self.relay.replay_id.to_string(),
        });
        let kind = format!("{object}ChangeEvent");
        self.relay.sent.push_back((kind.clone(), detail.clone()));
        while self.relay.sent.len() > KEPT {
            self.relay.sent.pop_front();
        }
        (kind, detail)
    }
}

/// Changes grouped into events: each create, delete and undelete alone; updates setting the
/// same values together, `IDS_PER_EVENT` ids at most.
struct Group {
    kind: ChangeKind,
    ids: Vec<String>,
    changed: Vec<String>,
    nulled: Vec<String>,
    fields: Record,
}

fn group(changes: Vec<RecordChange>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for change in changes {
        let mut fields = change.fields;
        fields.remove("Id");
        fields.remove("attributes");
        let (kind, id) = (change.kind, change.id);
        let same = |g: &Group| {
            g.kind == ChangeKind::Update
                && kind == ChangeKind::Update
                && g.ids.len() < IDS_PER_EVENT
                && g.fields == fields
        };
        if let Some(g) = groups.iter_mut().find(|g| same(g)) {
            g.ids.push(id);
            continue;
        }
        let changed: Vec<String> = match kind {
            ChangeKind::Update => (fields.keys())
                .filter(|k| !is_stamp(k) || k.as_str() == "LastModifiedDate")
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        let nulled = (fields.iter())
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.clone())
            .collect();
        // Nulled fields are named in the header, not sent as values.
        fields.retain(|_, v| !v.is_null());
        groups.push(Group {
            kind,
            ids: vec![id],
            changed,
            nulled,
            fields,
        });
    }
    groups
}

/// Puts `events` on the relay's bus, in order, in the background.
pub(super) fn spawn_events(org: &Arc<Mutex<Org>>, events: Vec<(String, Value)>) {
    if events.is_empty() {
        return;
    }
    let Some(relay) = lock(org).relay.relay.clone() else {
        return;
    };
    tokio::spawn(put_events(Arc::downgrade(org), relay, events));
}

async fn put_events(org: Weak<Mutex<Org>>, relay: Relay, events: Vec<(String, Value)>) {
    let client = reqwest::Client::new();
    let source = relay.bus.clone();
    // PutPartnerEvents takes 10 entries a request at most.
    for chunk in events.chunks(10) {
        let entries: Vec<Value> = (chunk.iter())
            .map(|(kind, detail)| {
                json!({
                    "Source": source, "DetailType": kind, "Detail": detail.to_string(),
                    "EventBusName": relay.bus,
                })
            })
            .collect();
        for attempt in 0..5u64 {
            let sent = client
                .post(&relay.endpoint)
                .header("x-amz-target", "AWSEvents.PutPartnerEvents")
                .header("content-type", "application/x-amz-json-1.1")
                .body(json!({ "Entries": entries }).to_string())
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                if let Some(org) = org.upgrade() {
                    lock(&org).relay.published += chunk.len() as u64;
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
        }
    }
}
