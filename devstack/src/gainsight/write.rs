//! Insert and update of up to 50 records a call, checked field by field, and the signed change
//! events a Rules Engine action posts for the records written.

use super::*;
use std::collections::HashMap;

pub(super) fn validate(fields: &[GsField], record: &Record, creating: bool) -> Result<(), String> {
    for (name, value) in record {
        let Some(f) = fields.iter().find(|f| f.name == name) else {
            return Err(format!("Invalid field {name}"));
        };
        // The GSID is read-only except as the key of an update.
        if f.system && (creating || f.kind != GsType::Gsid) {
            return Err(format!("Field {name} is read only"));
        }
        let ok = match (f.kind, value) {
            (_, Value::Null) => !f.required,
            (GsType::String | GsType::Gsid, Value::String(_)) => true,
            (GsType::Email, Value::String(s)) => s.contains('@'),
            (GsType::Number | GsType::Currency, Value::Number(_)) => true,
            (GsType::Boolean, Value::Bool(_)) => true,
            (GsType::Date | GsType::Datetime, Value::Number(n)) => n.is_i64(),
            (GsType::Json, Value::Array(_) | Value::Object(_)) => true,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "Invalid value {value} for field {name} of type {:?}",
                f.kind
            ));
        }
    }
    if creating {
        if let Some(f) = fields
            .iter()
            .find(|f| f.required && record.get(f.name).is_none_or(Value::is_null))
        {
            return Err(format!("Mandatory field {} is missing", f.name));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
pub(super) struct WriteBody {
    records: Vec<Record>,
}

pub(super) async fn insert(
    State(tenant): TenantState,
    headers: HeaderMap,
    Path(object): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    write(tenant, headers, object, None, body).await
}

#[derive(Deserialize)]
pub(super) struct Keys {
    keys: Option<String>,
}

pub(super) async fn update(
    State(tenant): TenantState,
    headers: HeaderMap,
    Path(object): Path<String>,
    Query(keys): Query<Keys>,
    body: axum::body::Bytes,
) -> Response {
    let Some(keys) = keys.keys.filter(|k| !k.is_empty()) else {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "GS_BAD_REQUEST",
            "keys query parameter is required for update",
        );
    };
    write(
        tenant,
        headers,
        object,
        Some(keys.split(',').map(str::to_string).collect()),
        body,
    )
    .await
}

pub(super) async fn write(
    tenant: Arc<Mutex<Tenant>>,
    headers: HeaderMap,
    object: String,
    keys: Option<Vec<String>>,
    body: axum::body::Bytes,
) -> Response {
    let (caller, body): (Caller, WriteBody) = match accept(&tenant, &headers, &body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let call = (caller, keys.as_deref());
    let (events, response) = match apply(&mut lock(&tenant), &object, call, &body) {
        Ok(done) => done,
        Err(refused) => return refused,
    };
    for (rule, (event_type, changed, record)) in events {
        let object = object.clone();
        tokio::spawn(deliver(
            tenant.clone(),
            rule,
            object,
            event_type,
            changed,
            record,
        ));
    }
    response
}

/// A change to announce: event type, fields changed, the record as it now is.
type Change = (&'static str, Vec<String>, Record);

/// Validates and applies a whole call (one invalid record fails it all, as documented: what
/// the call changed before it is undone); the change events its rules post, and the answer.
#[allow(clippy::result_large_err)] // an axum Response is the natural early answer of a handler
fn apply(
    t: &mut Tenant,
    object: &str,
    (caller, keys): (Caller, Option<&[String]>),
    body: &WriteBody,
) -> Result<(Vec<(Rule, Change)>, Response), Response> {
    t.stats.write_calls += 1;
    let bad = |code: &str, desc: String| envelope_error(StatusCode::BAD_REQUEST, code, &desc);
    if body.records.is_empty() || body.records.len() > WRITE_LIMIT {
        let desc = format!("Between 1 and {WRITE_LIMIT} records are allowed per call");
        return Err(bad("GS_BAD_REQUEST", desc));
    }
    let Some(&name) = t.objects.get_key_value(object).map(|(name, _)| name) else {
        return Err(bad(
            "GS_BAD_REQUEST",
            format!("Object {object} does not exist"),
        ));
    };
    let Some((fields, records)) = t.objects.get_mut(name) else {
        return Err(bad(
            "GS_BAD_REQUEST",
            format!("Object {object} does not exist"),
        ));
    };
    let mut batch = Batch::new(
        object,
        t.seq,
        records,
        t.key_indexes.entry(name).or_default(),
    );
    for (i, record) in body.records.iter().enumerate() {
        let done = validate(fields, record, keys.is_none()).and_then(|()| match keys {
            None => {
                batch.insert(record);
                Ok(())
            }
            Some(keys) => batch.update(record, keys),
        });
        if let Err(e) = done {
            // No index saw what the call changed: the call holds the tenant until it is undone.
            batch.undo();
            return Err(bad("GS_VALIDATION_FAILED", format!("records[{i}]: {e}")));
        }
    }
    t.seq = batch.seq;
    t.updated.entry(name).or_default().extend(batch.touched());
    let (written, changes) = (batch.written, batch.changes);
    let response =
        envelope_ok(json!({ "count": written.len(), "errors": null, "records": written }));
    let rules: Vec<&Rule> = t
        .rules
        .iter()
        .filter(|r| r.object == object)
        .filter(|r| !(r.skip_integration_user && caller == Caller::IntegrationUser))
        .collect();
    let events = changes
        .into_iter()
        .flat_map(|c| rules.iter().map(move |r| ((*r).clone(), c.clone())))
        .collect();
    Ok((events, response))
}

/// Records' positions by the text of their key values.
type Positions = HashMap<String, Vec<usize>>;

/// An object's records' positions by their values of `keys`, for the first `indexed` records.
#[derive(Default)]
pub(super) struct KeyIndex {
    keys: Vec<String>,
    positions: Positions,
    indexed: usize,
}

impl KeyIndex {
    /// The positions of the records whose values of `keys` are `text`, the index brought up to
    /// date first: built again for other keys, extended by the records appended since.
    fn find(&mut self, keys: &[String], records: &[Record], text: &str) -> &[usize] {
        if self.keys != keys {
            *self = KeyIndex {
                keys: keys.to_vec(),
                ..KeyIndex::default()
            };
        }
        for (i, r) in records.iter().enumerate().skip(self.indexed) {
            if let Some(text) = key_text(r, keys) {
                self.positions.entry(text).or_default().push(i);
            }
        }
        self.indexed = records.len();
        self.positions.get(text).map_or(&[], Vec::as_slice)
    }
}

/// An object's records as a call changes them, with what undoes the call.
struct Batch<'a> {
    object: &'a str,
    now: i64,
    /// The last GSID sequence number given.
    seq: u64,
    records: &'a mut Vec<Record>,
    index: &'a mut KeyIndex,
    /// How many records the object had before the call.
    before: usize,
    /// Each record the call updated, as it was before the call's first update of it.
    originals: Vec<(usize, Record)>,
    written: Vec<Record>,
    changes: Vec<Change>,
}

/// The values of `keys` in `record` as one text, `None` when one is missing or null.
fn key_text(record: &Record, keys: &[String]) -> Option<String> {
    let values: Option<Vec<&Value>> = (keys.iter())
        .map(|k| record.get(k.as_str()).filter(|v| !v.is_null()))
        .collect();
    serde_json::to_string(&values?).ok()
}

impl<'a> Batch<'a> {
    fn new(
        object: &'a str,
        seq: u64,
        records: &'a mut Vec<Record>,
        index: &'a mut KeyIndex,
    ) -> Self {
        Batch {
            object,
            now: now_ms(),
            seq,
            before: records.len(),
            records,
            index,
            originals: vec![],
            written: vec![],
            changes: vec![],
        }
    }

    /// A new record with its GSID and dates.
    fn insert(&mut self, record: &Record) {
        self.seq += 1;
        let mut r = record.clone();
        let gsid = format!("1P0{:02}{:016X}", self.object.len(), self.seq);
        r.insert("Gsid".into(), Value::String(gsid));
        r.insert("CreatedDate".into(), json!(self.now));
        r.insert("ModifiedDate".into(), json!(self.now));
        self.changes
            .push(("created", r.keys().cloned().collect(), r.clone()));
        self.written.push(r.clone());
        self.records.push(r);
    }

    /// An update of the one record matching `keys`.
    fn update(&mut self, record: &Record, keys: &[String]) -> Result<(), String> {
        if let Some(k) = keys
            .iter()
            .find(|k| record.get(k.as_str()).is_none_or(Value::is_null))
        {
            return Err(format!("key field {k} has no value"));
        }
        let text = key_text(record, keys).unwrap_or_default();
        let found = self.index.find(keys, self.records, &text);
        let &[index] = found else {
            let n = found.len();
            return Err(format!("{n} records match the keys {}", keys.join(",")));
        };
        let target = &mut self.records[index];
        if index < self.before && !self.originals.iter().any(|(i, _)| *i == index) {
            self.originals.push((index, target.clone()));
        }
        let changed: Vec<String> = record
            .iter()
            .filter(|(k, v)| target.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        target.extend(record.clone());
        target.insert("ModifiedDate".into(), json!(self.now));
        if !changed.is_empty() {
            self.changes.push(("updated", changed, target.clone()));
        }
        self.written.push(target.clone());
        Ok(())
    }

    /// The positions of the records that were there before the call and that it updated.
    fn touched(&self) -> Vec<usize> {
        self.originals.iter().map(|(at, _)| *at).collect()
    }

    /// Puts the object back as it was before the call.
    fn undo(self) {
        self.records.truncate(self.before);
        for (index, original) in self.originals {
            self.records[index] = original;
        }
    }
}

/// Posts one signed change event, retrying with backoff until a 2xx (at most 6 tries).
pub(super) async fn deliver(
    tenant: Arc<Mutex<Tenant>>,
    rule: Rule,
    object: String,
    event_type: &'static str,
    changed: Vec<String>,
    record: Record,
) {
    let occurred = record
        .get("ModifiedDate")
        .and_then(Value::as_i64)
        .unwrap_or_else(now_ms);
    let body = json!({
        "eventId": uuid::Uuid::new_v4().to_string(),
        "eventType": event_type,
        "objectName": object,
        "occurredAt": occurred,
        "changedFields": changed,
        "records": [record],
    })
    .to_string();
    let http = reqwest::Client::new();
    let mut wait = Duration::from_millis(100);
    for _ in 0..6 {
        let ts = now_ms() / 1000;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(rule.secret.as_bytes()).expect("any key length");
        mac.update(format!("{ts}.").as_bytes());
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let sent = http
            .post(&rule.url)
            .header("content-type", "application/json")
            .header("x-gs-timestamp", ts.to_string())
            .header("x-gs-signature", signature)
            .body(body.clone())
            .send()
            .await;
        if matches!(&sent, Ok(r) if r.status().is_success()) {
            lock(&tenant).stats.webhook_deliveries += 1;
            return;
        }
        lock(&tenant).stats.webhook_failures += 1;
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(v: Value) -> Record {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn an_update_finds_the_one_record_its_keys_match_by_value() {
        let mut records = vec![
            record(json!({"Gsid": "G1", "Name": "A", "Domain": "a.io"})),
            record(json!({"Gsid": "G2", "Name": "B", "Domain": "b.io"})),
            record(json!({"Gsid": "G3", "Name": "C", "Domain": "b.io"})),
            record(json!({"Gsid": "G4", "Name": "D", "Employees": 1})),
        ];
        let mut index = KeyIndex::default();
        let keys = |k: &str| vec![k.to_string()];
        let mut batch = Batch::new("Company", 0, &mut records, &mut index);
        let by_gsid = record(json!({"Gsid": "G2", "Name": "B2"}));
        assert_eq!(batch.update(&by_gsid, &keys("Gsid")), Ok(()));
        assert_eq!(batch.records[1]["Name"], json!("B2"));
        let again = record(json!({"Gsid": "G2", "Name": "B3"}));
        assert_eq!(batch.update(&again, &keys("Gsid")), Ok(()), "same call");
        assert_eq!(batch.records[1]["Name"], json!("B3"));
        let missing = record(json!({"Gsid": "G9", "Name": "X"}));
        let err = batch.update(&missing, &keys("Gsid")).unwrap_err();
        assert_eq!(err, "0 records match the keys Gsid");

        let two = record(json!({"Domain": "b.io", "Name": "X"}));
        let err = batch.update(&two, &keys("Domain")).unwrap_err();
        assert_eq!(err, "2 records match the keys Domain");
        // A number matches the same number only, not its text.
        let text = record(json!({"Employees": "1", "Name": "X"}));
        assert!(batch.update(&text, &keys("Employees")).is_err());
        let number = record(json!({"Employees": 1, "Name": "D2"}));
        assert_eq!(batch.update(&number, &keys("Employees")), Ok(()));
        assert_eq!(batch.records[3]["Name"], json!("D2"));
    }

    #[test]
    fn the_index_outlives_a_call_and_sees_records_added_since() {
        let mut records = vec![record(json!({"Gsid": "G1", "Name": "A"}))];
        let mut index = KeyIndex::default();
        let keys = vec!["Gsid".to_string()];
        let mut first = Batch::new("Company", 0, &mut records, &mut index);
        assert_eq!(
            first.update(&record(json!({"Gsid": "G1", "Name": "A2"})), &keys),
            Ok(())
        );
        let mut second = Batch::new("Company", 0, &mut records, &mut index);
        second.insert(&record(json!({"Name": "B"})));
        let gsid = second.records[1]["Gsid"].as_str().map(str::to_string);
        let mut third = Batch::new("Company", 1, &mut records, &mut index);
        let update = record(json!({"Gsid": gsid, "Name": "B2"}));
        assert_eq!(
            third.update(&update, &keys),
            Ok(()),
            "a record inserted since is found"
        );
        assert_eq!(records[1]["Name"], json!("B2"));
        assert_eq!(records[0]["Name"], json!("A2"));
    }

    #[test]
    fn a_refused_call_leaves_the_object_as_it_was() {
        let mut records = vec![
            record(json!({"Gsid": "G1", "Name": "A"})),
            record(json!({"Gsid": "G2", "Name": "B"})),
        ];
        let before = records.clone();
        let mut index = KeyIndex::default();
        let keys = vec!["Gsid".to_string()];
        let mut updates = Batch::new("Company", 0, &mut records, &mut index);
        assert_eq!(
            updates.update(&record(json!({"Gsid": "G2", "Name": "B2"})), &keys),
            Ok(())
        );
        assert_eq!(
            updates.update(&record(json!({"Gsid": "G2", "Name": "B3"})), &keys),
            Ok(())
        );
        assert!(updates
            .update(&record(json!({"Gsid": "G9", "Name": "X"})), &keys)
            .is_err());
        updates.undo();
        assert_eq!(records, before, "both updates of G2 undone");
        let mut inserts = Batch::new("Company", 2, &mut records, &mut index);
        inserts.insert(&record(json!({"Name": "C"})));
        inserts.undo();
        assert_eq!(records, before, "the insert undone");
    }
}
