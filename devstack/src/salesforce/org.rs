//! The org's state changes: seeding, user edits, ids and system stamps, and the fault queue.

use super::*;

pub(super) fn seed_records(
    org_arc: &Arc<Mutex<Org>>,
    object: &str,
    records: Vec<Record>,
    workflow: bool,
) -> Vec<String> {
    let mut org = lock(org_arc);
    let now = org.now();
    let mut ids = vec![];
    let mut created = vec![];
    for mut r in records {
        let id = org.next_id(object);
        stamp(&mut r, &id, now, true, Author::Person);
        created.push(r.clone());
        if let Some(o) = org.objects.get_mut(object) {
            o.records.push(r);
        }
        ids.push(id);
    }
    let (sends, events) = if workflow {
        let changes = (created.iter())
            .filter_map(|r| relay::RecordChange::between(None, r))
            .collect();
        (
            org.outbound_for(object, &created, Author::Person),
            org.change_events(object, changes, Author::Person),
        )
    } else {
        Default::default()
    };
    drop(org);
    spawn_outbound(org_arc, sends);
    relay::spawn_events(org_arc, events);
    ids
}

/// Deletes records `ids` of `object` as `author` (to the Recycle Bin); how many there were.
pub(super) fn delete_records(
    org_arc: &Arc<Mutex<Org>>,
    object: &str,
    ids: &[String],
    author: Author,
) -> usize {
    let mut org = lock(org_arc);
    let deleted: Vec<relay::RecordChange> = ids
        .iter()
        .filter(|id| (org.objects.get_mut(object)).is_some_and(|o| o.delete(id)))
        .map(|id| relay::RecordChange::of(relay::ChangeKind::Delete, id))
        .collect();
    let count = deleted.len();
    let events = org.change_events(object, deleted, author);
    drop(org);
    relay::spawn_events(org_arc, events);
    count
}

/// Sets `fields` on records `ids` of `object` in one transaction, as a person's data load does
/// (one Outbound Message per record, change events grouped); how many were found.
pub(super) fn edit_records(
    org_arc: &Arc<Mutex<Org>>,
    object: &str,
    ids: &[String],
    fields: &Record,
) -> usize {
    let mut org = lock(org_arc);
    let now = org.now();
    let (mut changes, mut edited) = (Vec::new(), Vec::new());
    if let Some(o) = org.objects.get_mut(object) {
        for record in o.records.iter_mut() {
            let Some(id) = record.get("Id").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            if !ids.contains(&id) {
                continue;
            }
            let before = record.clone();
            record.extend(fields.clone());
            stamp(record, &id, now, false, Author::Person);
            changes.extend(relay::RecordChange::between(Some(&before), record));
            edited.push(record.clone());
        }
    }
    let sends = org.outbound_for(object, &edited, Author::Person);
    let events = org.change_events(object, changes, Author::Person);
    drop(org);
    spawn_outbound(org_arc, sends);
    relay::spawn_events(org_arc, events);
    edited.len()
}

pub(super) fn edit_record(
    org_arc: &Arc<Mutex<Org>>,
    object: &str,
    id: &str,
    fields: Record,
    workflow: bool,
) -> bool {
    let mut org = lock(org_arc);
    let now = org.now();
    let Some(record) = org.objects.get_mut(object).and_then(|o| {
        o.records
            .iter_mut()
            .find(|r| r.get("Id").and_then(Value::as_str) == Some(id))
    }) else {
        return false;
    };
    let before = record.clone();
    record.extend(fields);
    stamp(record, id, now, false, Author::Person);
    let edited = vec![record.clone()];
    let (sends, events) = if workflow {
        let change = relay::RecordChange::between(Some(&before), &edited[0]);
        (
            org.outbound_for(object, &edited, Author::Person),
            org.change_events(object, change.into_iter().collect(), Author::Person),
        )
    } else {
        Default::default()
    };
    drop(org);
    spawn_outbound(org_arc, sends);
    relay::spawn_events(org_arc, events);
    true
}

impl Org {
    pub(super) fn now(&self) -> i64 {
        self.clock_ms.unwrap_or_else(now_ms)
    }

    pub(super) fn next_id(&mut self, object: &str) -> String {
        self.seq += 1;
        let prefix = self.objects.get(object).map(|o| o.prefix).unwrap_or("a00");
        let id15 = format!("{prefix}5g00{:08}", self.seq);
        format!("{id15}{}", id_suffix(&id15))
    }

    /// The org's API calls today, as `Sforce-Limit-Info` reports them.
    pub(super) fn used(&self) -> u64 {
        self.stats.api_calls + self.usage_offset
    }

    /// Counts the call and applies the first pending fault, if any.
    #[allow(clippy::result_large_err)] // an axum Response is the natural early answer of a handler
    pub(super) fn begin_call(&mut self, headers: &HeaderMap) -> Result<Option<Fault>, Response> {
        self.stats.api_calls += 1;
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !self.tokens.iter().any(|t| t == token) {
            return Err(sf_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
                self.used(),
            ));
        }
        if self.used() > DAILY_LIMIT {
            return Err(sf_error(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                self.used(),
            ));
        }
        let Some(front) = self.faults.front_mut() else {
            return Ok(None);
        };
        let fault = front.clone();
        let exhausted = match front {
            Fault::Status { times, .. } | Fault::Delay { times, .. } => {
                *times = times.saturating_sub(1);
                *times == 0
            }
            // Row locks apply to collection calls only, failures to Bulk jobs: their handlers
            // consume them.
            Fault::LockRows { .. } | Fault::BulkFailAfter { .. } | Fault::BulkSlow { .. } => {
                return Ok(None)
            }
        };
        if exhausted {
            self.faults.pop_front();
        }
        if let Fault::Status {
            status,
            error_code,
            message,
            retry_after,
            ..
        } = &fault
        {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut response = sf_error(status, error_code, message, self.used());
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, (*seconds).into());
            }
            return Err(response);
        }
        Ok(Some(fault))
    }
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The 3-character case-safety suffix of an 18-character Salesforce Id.
pub fn id_suffix(id15: &str) -> String {
    const MAP: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk.iter().enumerate().fold(0usize, |acc, (i, c)| {
                if c.is_ascii_uppercase() {
                    acc | (1 << i)
                } else {
                    acc
                }
            });
            MAP[bits] as char
        })
        .collect()
}

pub(super) fn stamp(record: &mut Record, id: &str, now: i64, created: bool, author: Author) {
    let ts = Value::String(sf_datetime(now));
    let user = Value::String(author.user_id().into());
    record.insert("Id".into(), Value::String(id.into()));
    if created {
        record.insert("CreatedDate".into(), ts.clone());
        record.insert("CreatedById".into(), user.clone());
        record.insert("IsDeleted".into(), Value::Bool(false));
    }
    record.insert("LastModifiedById".into(), user);
    record.insert("LastModifiedDate".into(), ts.clone());
    record.insert("SystemModstamp".into(), ts);
}

/// Restores record `id` of `object` from the Recycle Bin as a person would; false if it is not
/// there.
pub(super) fn undelete_record(org_arc: &Arc<Mutex<Org>>, object: &str, id: &str) -> bool {
    let mut org = lock(org_arc);
    if !(org.objects.get_mut(object)).is_some_and(|o| o.undelete(id)) {
        return false;
    }
    let change = relay::RecordChange::of(relay::ChangeKind::Undelete, id);
    let events = org.change_events(object, vec![change], Author::Person);
    drop(org);
    relay::spawn_events(org_arc, events);
    true
}

/// Merges `losers` into `master` as a person would: the losers are deleted with
/// `MasterRecordId` set to the master, and the master is updated; how many were merged.
pub(super) fn merge_records(
    org_arc: &Arc<Mutex<Org>>,
    object: &str,
    master: &str,
    losers: &[String],
) -> usize {
    {
        let mut org = lock(org_arc);
        for loser in losers {
            let record = (org.objects.get_mut(object)).and_then(|o| {
                (o.records.iter_mut())
                    .find(|r| r.get("Id").and_then(Value::as_str) == Some(loser.as_str()))
            });
            if let Some(record) = record {
                record.insert("MasterRecordId".into(), Value::String(master.to_string()));
            }
        }
    }
    let merged = delete_records(org_arc, object, losers, Author::Person);
    edit_record(org_arc, object, master, Record::new(), true);
    merged
}
