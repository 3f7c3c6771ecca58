//! sObject Collections: create, update by Id and upsert on an external ID, 200 records a call,
//! validated field by field with Salesforce's per-record errors.

// An axum Response is the natural early answer of each step of a handler.
#![allow(clippy::result_large_err)]

use super::*;
use base64::Engine as _;
use FieldType as T;

/// Which sObject Collections call a request is.
pub(super) enum Op {
    Upsert { object: String, ext_field: String },
    Create,
    Update,
}

pub(super) async fn upsert(
    State(org): OrgState,
    headers: HeaderMap,
    Path((_ver, object, ext_field)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    collection(org, headers, Op::Upsert { object, ext_field }, body).await
}

pub(super) async fn create(
    State(org): OrgState,
    headers: HeaderMap,
    Path(_ver): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    collection(org, headers, Op::Create, body).await
}

pub(super) async fn update(
    State(org): OrgState,
    headers: HeaderMap,
    Path(_ver): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    collection(org, headers, Op::Update, body).await
}

pub(super) async fn collection(
    org_arc: Arc<Mutex<Org>>,
    headers: HeaderMap,
    op: Op,
    body: axum::body::Bytes,
) -> Response {
    if let Err(resp) = begin(&org_arc, &headers).await {
        return resp;
    }
    let mut org = lock(&org_arc);
    match op {
        Op::Upsert { .. } => org.stats.upsert_calls += 1,
        Op::Create => org.stats.create_calls += 1,
        Op::Update => org.stats.update_calls += 1,
    }
    let used = org.used();
    let lock_rows = take_lock_rows(&mut org) || {
        let locked = crate::chaos::chance(org.rates.locked_rows);
        org.fault_counts.locked_rows += u64::from(locked);
        locked
    };
    let (records, all_or_none) = match parse_request(&body, used) {
        Ok(parsed) => parsed,
        Err(resp) => return resp,
    };
    let object = target_object(&op, &records);
    if let Err(resp) = check_target(&org, &op, &object, used) {
        return resp;
    }
    let mut applied = apply(&mut org, &op, &object, &records, lock_rows);
    if all_or_none && applied.any_failed {
        roll_back(&mut applied.results);
        let results = std::mem::take(&mut applied.results);
        applied.undo(&mut org);
        return ok_json(Value::Array(results), used);
    }
    let (results, sends, events) = keep(&mut org, &object, applied);
    drop(org);
    spawn_outbound(&org_arc, sends);
    relay::spawn_events(&org_arc, events);
    ok_json(Value::Array(results), used)
}

/// What keeping a call's writes gives: the per-record results, the Outbound Messages and the
/// change events the records written (by the integration user) fire.
pub(super) type Kept = (Vec<Value>, Vec<OutboundSend>, Vec<(String, Value)>);

/// Keeps what `apply` staged and counts it.
pub(super) fn keep(org: &mut Org, object: &str, applied: Applied) -> Kept {
    let staged = &applied.staged;
    let written: Vec<Record> = (applied.touched.iter())
        .map(|i| staged.records[*i].clone())
        .collect();
    // Updates change records in place; creates are appended after the records there were.
    let changes: Vec<relay::RecordChange> = match org.relay.relay {
        Some(_) => (applied.touched.iter())
            .filter_map(|i| relay::RecordChange::between(staged.before(*i), &staged.records[*i]))
            .collect(),
        None => Vec::new(),
    };
    if let Some(o) = org.objects.get_mut(object) {
        o.records = applied.staged.records;
    }
    org.stats.records_created += applied.created;
    org.stats.records_updated += applied.updated;
    let sends = org.outbound_for(object, &written, Author::IntegrationUser);
    let events = org.change_events(object, changes, Author::IntegrationUser);
    (applied.results, sends, events)
}

/// Counts the call and applies an injected fault: an error answer, or a delay.
pub(super) async fn begin(org_arc: &Arc<Mutex<Org>>, headers: &HeaderMap) -> Result<(), Response> {
    let delay = match lock(org_arc).begin_call(headers)? {
        Some(Fault::Delay { ms, .. }) => Some(ms),
        _ => None,
    };
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    Ok(())
}

/// Whether an injected row lock applies to this call (and counts it down).
fn take_lock_rows(org: &mut Org) -> bool {
    let Some(Fault::LockRows { times }) = org.faults.front_mut() else {
        return false;
    };
    *times = times.saturating_sub(1);
    if *times == 0 {
        org.faults.pop_front();
    }
    true
}

/// The request's records (at most 200) and its `allOrNone`.
fn parse_request(body: &[u8], used: u64) -> Result<(Vec<Value>, bool), Response> {
    let request: Value = serde_json::from_slice(body).map_err(|e| {
        sf_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            &format!("Unexpected character: {e}"),
            used,
        )
    })?;
    let Some(records) = request.get("records").and_then(Value::as_array) else {
        return Err(sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "Unrecognized field \"records\" missing",
            used,
        ));
    };
    if records.len() > COLLECTION_LIMIT {
        return Err(sf_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
            used,
        ));
    }
    let all_or_none = request.get("allOrNone").and_then(Value::as_bool);
    Ok((records.clone(), all_or_none.unwrap_or(false)))
}

/// The object written: named by the upsert's path, or by each record's `attributes.type` for
/// create and update (this org takes one type per call).
fn target_object(op: &Op, records: &[Value]) -> String {
    match op {
        Op::Upsert { object, .. } => object.clone(),
        _ => records
            .first()
            .and_then(|r| r.get("attributes"))
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    }
}

/// The object exists, and an upsert's key is an External ID (or the Id).
fn check_target(org: &Org, op: &Op, object: &str, used: u64) -> Result<(), Response> {
    let Some(sobject) = org.objects.get(object) else {
        return Err(sf_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            used,
        ));
    };
    let Op::Upsert { ext_field, .. } = op else {
        return Ok(());
    };
    match sobject.field(ext_field) {
        Some(f) if f.external_id || f.kind == FieldType::Id => Ok(()),
        _ => Err(sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            &format!("Field name provided, {ext_field} is not an External ID or indexed field for {object}"),
            used,
        )),
    }
}

/// The records of a call applied to a copy of the object's records.
pub(super) struct Applied {
    object: String,
    pub(super) staged: Staged,
    pub(super) results: Vec<Value>,
    pub(super) any_failed: bool,
    /// Indexes in `staged` of the records written.
    touched: Vec<usize>,
    created: u64,
    updated: u64,
}

pub(super) fn apply(
    org: &mut Org,
    op: &Op,
    object: &str,
    records: &[Value],
    lock_rows: bool,
) -> Applied {
    let now = org.now();
    // The object's records are written in place, each one changed kept as it was first, rather
    // than copied whole for every call (a million records copied per write held gigabytes).
    let held =
        (org.objects.get_mut(object)).map_or_else(Vec::new, |o| std::mem::take(&mut o.records));
    let mut applied = Applied {
        object: object.to_string(),
        staged: Staged::new(held),
        results: Vec::with_capacity(records.len()),
        any_failed: false,
        touched: Vec::new(),
        created: 0,
        updated: 0,
    };
    let mut seen_keys = Seen::default();
    for raw in records {
        let sobject = &org.objects[object];
        let staged = &mut applied.staged;
        let outcome = match op {
            Op::Upsert { ext_field, .. } => upsert_one(
                sobject,
                object,
                ext_field,
                raw,
                staged,
                &mut seen_keys,
                lock_rows,
            ),
            Op::Create => create_one(sobject, object, raw, staged, lock_rows),
            Op::Update => update_one(sobject, object, raw, staged, &mut seen_keys, lock_rows),
        };
        match outcome {
            Ok((index, is_new)) => {
                let id = if is_new {
                    applied.created += 1;
                    org.next_id(object)
                } else {
                    applied.updated += 1;
                    let id = applied.staged.records[index]
                        .get("Id")
                        .and_then(Value::as_str);
                    id.unwrap_or_default().to_string()
                };
                stamp(
                    applied.staged.touch(index),
                    &id,
                    now,
                    is_new,
                    Author::IntegrationUser,
                );
                applied.touched.push(index);
                let result = json!({ "id": id, "success": true, "errors": [], "created": is_new });
                applied.results.push(result);
            }
            Err(error) => {
                applied.any_failed = true;
                applied
                    .results
                    .push(json!({ "success": false, "errors": [error] }));
            }
        }
    }
    applied
}

/// An object's records while one call writes them: changed in place, each existing record
/// the call changes kept as it was, so that the call can be undone.
pub(super) struct Staged {
    pub(super) records: Vec<Record>,
    /// Each record the call changed that was there before it, as it was.
    was: HashMap<usize, Record>,
    /// How many records there were before the call.
    len_before: usize,
}

impl Staged {
    fn new(records: Vec<Record>) -> Self {
        Staged {
            len_before: records.len(),
            records,
            was: HashMap::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    /// Adds a new record.
    pub(super) fn push(&mut self, record: Record) {
        self.records.push(record);
    }

    /// Record `index`, to change: kept as it was first.
    pub(super) fn touch(&mut self, index: usize) -> &mut Record {
        if index < self.len_before && !self.was.contains_key(&index) {
            self.was.insert(index, self.records[index].clone());
        }
        &mut self.records[index]
    }

    /// Record `index` as it was before the call; `None` for one the call created.
    fn before(&self, index: usize) -> Option<&Record> {
        if index >= self.len_before {
            return None;
        }
        self.was.get(&index).or_else(|| self.records.get(index))
    }

    /// The records as they were before the call.
    fn undone(mut self) -> Vec<Record> {
        self.records.truncate(self.len_before);
        for (index, record) in self.was {
            self.records[index] = record;
        }
        self.records
    }
}

impl Applied {
    /// Puts the object's records back as they were before the call.
    pub(super) fn undo(self, org: &mut Org) {
        if let Some(o) = org.objects.get_mut(self.object.as_str()) {
            o.records = self.staged.undone();
        }
    }
}

/// What one call has seen: the keys (Ids, external ids) of its records so far, and an index of
/// the staged records by the field the call matches on (the external id of an upsert, `Id` of
/// an update), built once per call so a call of many records costs no scan per record.
#[derive(Default)]
pub(super) struct Seen {
    keys: std::collections::HashSet<String>,
    index: Option<(String, HashMap<String, Vec<usize>>)>,
}

impl Seen {
    /// The staged records' positions by their value of `field`.
    fn staged_by(&mut self, field: &str, staged: &[Record]) -> &HashMap<String, Vec<usize>> {
        if self.index.as_ref().is_none_or(|(f, _)| f != field) {
            let mut index: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, r) in staged.iter().enumerate() {
                if let Some(v) = r.get(field).and_then(Value::as_str) {
                    index.entry(v.to_string()).or_default().push(i);
                }
            }
            self.index = Some((field.to_string(), index));
        }
        &self.index.get_or_insert_default().1
    }

    /// Notes a record staged at `position` with `key` in the indexed field.
    fn indexed(&mut self, key: String, position: usize) {
        if let Some((_, index)) = &mut self.index {
            index.entry(key).or_default().push(position);
        }
    }
}

/// `allOrNone` with a failure: every success is rolled back.
fn roll_back(results: &mut [Value]) {
    for r in results.iter_mut().filter(|r| r["success"] == json!(true)) {
        *r = json!({ "id": r["id"], "success": false, "errors": [{
            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
            "fields": []
        }]});
    }
}

pub(super) fn save_error(code: &str, message: String, fields: Vec<&str>) -> Value {
    json!({ "statusCode": code, "message": message, "fields": fields })
}

pub(super) fn declared_type(record: &Record) -> Option<&str> {
    record
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
}

/// Validates and applies one new record; refuses a duplicate external-ID value.
pub(super) fn create_one(
    sobject: &SObject,
    object: &str,
    raw: &Value,
    staged: &mut Staged,
    lock_rows: bool,
) -> Result<(usize, bool), Value> {
    let Some(record) = raw.as_object().filter(|r| declared_type(r) == Some(object)) else {
        return Err(save_error(
            "INVALID_TYPE",
            format!("attributes.type must be {object} (one sObject type per call)"),
            vec![],
        ));
    };
    if record.contains_key("Id") {
        return Err(save_error(
            "INVALID_FIELD",
            "cannot specify Id in an insert call".into(),
            vec!["Id"],
        ));
    }
    if lock_rows {
        return Err(save_error(
            "UNABLE_TO_LOCK_ROW",
            "unable to obtain exclusive access to this record or 1 records".into(),
            vec![],
        ));
    }
    for def in sobject.fields.iter().filter(|f| f.external_id) {
        if let Some(Value::String(v)) = record.get(def.name) {
            if let Some(other) = (staged.records.iter())
                .find(|r| r.get(def.name).and_then(Value::as_str) == Some(v.as_str()))
            {
                let id = other.get("Id").and_then(Value::as_str).unwrap_or_default();
                return Err(save_error(
                    "DUPLICATE_VALUE",
                    format!(
                        "duplicate value found: {} duplicates value on record with id: {id}",
                        def.name
                    ),
                    vec![def.name],
                ));
            }
        }
    }
    let fields = check_fields(sobject, object, record, true)?;
    staged.push(fields);
    Ok((staged.len() - 1, true))
}

/// Validates and applies one update by Id.
pub(super) fn update_one(
    sobject: &SObject,
    object: &str,
    raw: &Value,
    staged: &mut Staged,
    seen: &mut Seen,
    lock_rows: bool,
) -> Result<(usize, bool), Value> {
    let Some(record) = raw.as_object().filter(|r| declared_type(r) == Some(object)) else {
        return Err(save_error(
            "INVALID_TYPE",
            format!("attributes.type must be {object} (one sObject type per call)"),
            vec![],
        ));
    };
    let Some(id) = record.get("Id").and_then(Value::as_str).map(str::to_string) else {
        return Err(save_error(
            "MISSING_ARGUMENT",
            "Id not specified in an update call".into(),
            vec!["Id"],
        ));
    };
    if seen.keys.contains(&id) {
        return Err(save_error(
            "DUPLICATE_ID",
            format!("duplicate id in list: {id}"),
            vec!["Id"],
        ));
    }
    seen.keys.insert(id.clone());
    if lock_rows {
        return Err(save_error(
            "UNABLE_TO_LOCK_ROW",
            "unable to obtain exclusive access to this record or 1 records".into(),
            vec![],
        ));
    }
    let found = seen.staged_by("Id", &staged.records).get(&id);
    let Some(index) = found.and_then(|at| at.first().copied()) else {
        if sobject.deleted.contains_key(&id) {
            return Err(save_error(
                "ENTITY_IS_DELETED",
                "entity is deleted".into(),
                vec![],
            ));
        }
        return Err(save_error(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("invalid cross reference id: {id}"),
            vec!["Id"],
        ));
    };
    let fields = check_fields(sobject, object, record, false)?;
    staged.touch(index).extend(fields);
    Ok((index, false))
}

/// Fields an Event needs beyond the ones the describe marks required.
fn event_rule(object: &str, record: &Record) -> Vec<&'static str> {
    if object == "Event" {
        super::schema::event_missing(record)
    } else {
        Vec::new()
    }
}

/// Field-level checks of one record: known, writable, typed, required on create, not nulled when
/// required. Returns the fields to store (without `attributes`).
pub(super) fn check_fields(
    sobject: &SObject,
    object: &str,
    record: &Record,
    is_new: bool,
) -> Result<Record, Value> {
    for (name, value) in record.iter().filter(|(k, _)| k.as_str() != "attributes") {
        let Some(def) = sobject.field(name) else {
            return Err(save_error(
                "INVALID_FIELD",
                format!("No such column '{name}' on sobject of type {object}"),
                vec![],
            ));
        };
        if (is_new && !def.createable) || (!is_new && !def.updateable && def.kind != FieldType::Id)
        {
            return Err(save_error(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!("Unable to create/update fields: {name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."),
                vec![def.name],
            ));
        }
        check_value(def, value)
            .map_err(|(code, message)| save_error(code, message, vec![def.name]))?;
    }
    if is_new {
        let missing: Vec<&str> = sobject
            .fields
            .iter()
            .filter(|f| f.required_on_create() && record.get(f.name).is_none_or(Value::is_null))
            .map(|f| f.name)
            .chain(event_rule(object, record))
            .collect();
        if !missing.is_empty() {
            return Err(save_error(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                missing,
            ));
        }
    } else if let Some(def) = sobject
        .fields
        .iter()
        .find(|f| !f.nillable && f.updateable && record.get(f.name) == Some(&Value::Null))
    {
        return Err(save_error(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", def.name),
            vec![def.name],
        ));
    }
    let mut fields: Record = record
        .iter()
        .filter(|(k, _)| k.as_str() != "attributes")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if is_new {
        for f in sobject
            .fields
            .iter()
            .filter(|f| f.defaulted && f.kind == FieldType::Picklist)
        {
            fields.entry(f.name.to_string()).or_insert_with(|| {
                Value::String(f.picklist.first().copied().unwrap_or_default().into())
            });
        }
    }
    Ok(fields)
}

/// Validates and applies one record to `staged`; returns its index and whether it was created.
pub(super) fn upsert_one(
    sobject: &SObject,
    object: &str,
    ext_field: &str,
    raw: &Value,
    staged: &mut Staged,
    seen_keys: &mut Seen,
    lock_rows: bool,
) -> Result<(usize, bool), Value> {
    let err = |code: &str, message: String, fields: Vec<&str>| save_error(code, message, fields);
    let Some(record) = raw.as_object() else {
        return Err(err(
            "INVALID_TYPE",
            "record must be a JSON object".into(),
            vec![],
        ));
    };
    if declared_type(record) != Some(object) {
        return Err(err(
            "INVALID_TYPE",
            format!("attributes.type must be {object}"),
            vec![],
        ));
    }
    let key = match record.get(ext_field) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(err(
                "MISSING_ARGUMENT",
                format!("{ext_field} not specified"),
                vec![ext_field],
            ))
        }
    };
    if seen_keys.keys.contains(&key) {
        return Err(err(
            "DUPLICATE_EXTERNAL_ID",
            format!("Duplicate external id specified: {key}"),
            vec![ext_field],
        ));
    }
    seen_keys.keys.insert(key.clone());
    if lock_rows {
        return Err(err(
            "UNABLE_TO_LOCK_ROW",
            "unable to obtain exclusive access to this record or 1 records".into(),
            vec![],
        ));
    }
    let matches: Vec<usize> = seen_keys
        .staged_by(ext_field, &staged.records)
        .get(&key)
        .cloned()
        .unwrap_or_default();
    if matches.len() > 1 {
        return Err(err(
            "DUPLICATE_EXTERNAL_ID",
            format!("{ext_field}: more than one record found for external id field: {key}"),
            vec![ext_field],
        ));
    }
    let is_new = matches.is_empty();
    let fields = check_fields(sobject, object, record, is_new)?;
    if is_new {
        staged.push(fields);
        seen_keys.indexed(key, staged.len() - 1);
        Ok((staged.len() - 1, true))
    } else {
        let index = matches[0];
        staged.touch(index).extend(fields);
        Ok((index, false))
    }
}

pub(super) fn check_value(def: &FieldDef, value: &Value) -> Result<(), (&'static str, String)> {
    if value.is_null() {
        return Ok(());
    }
    let bad_type = || {
        (
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            format!("{}: value not of required type: {value}", def.name),
        )
    };
    match def.kind {
        T::Id
        | T::String
        | T::Textarea
        | T::Picklist
        | T::Email
        | T::Phone
        | T::Url
        | T::Reference => {
            let Some(s) = value.as_str() else {
                return Err(bad_type());
            };
            if def.length > 0 && s.chars().count() > def.length {
                return Err((
                    "STRING_TOO_LONG",
                    format!(
                        "{}: data value too large: {s} (max length={})",
                        def.name, def.length
                    ),
                ));
            }
            if def.kind == T::Picklist && def.restricted && !def.picklist.contains(&s) {
                return Err((
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("{}: bad value for restricted picklist field: {s}", def.name),
                ));
            }
            if def.kind == T::Email && !s.contains('@') {
                return Err((
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {s}", def.name),
                ));
            }
            Ok(())
        }
        T::Base64 => value
            .as_str()
            .filter(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok())
            .map(|_| ())
            .ok_or_else(bad_type),
        T::Currency | T::Double => value.as_f64().map(|_| ()).ok_or_else(bad_type),
        T::Int => value.as_i64().map(|_| ()).ok_or_else(bad_type),
        T::Boolean => value.as_bool().map(|_| ()).ok_or_else(bad_type),
        T::Date => value
            .as_str()
            .filter(|s| parse_date_ms(s).is_some() && s.len() == 10)
            .map(|_| ())
            .ok_or_else(bad_type),
        T::Datetime => value
            .as_str()
            .and_then(parse_datetime_ms)
            .map(|_| ())
            .ok_or_else(bad_type),
    }
}
