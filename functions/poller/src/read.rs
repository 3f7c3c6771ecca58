//! What a poll reads from each system: the next page after a (modified, id) cursor, in that
//! order (`modified > t OR (modified = t AND id > last)`), with every field the job maps, and the
//! record versions it found.

use serde_json::{json, Value};
use shared::domain::change::{GAINSIGHT_MODIFIED, SALESFORCE_MODIFIED};
use shared::domain::timeline::{Participants, TYPE_FIELD};
use shared::domain::{ChangeEvent, Fields, Job, SourceRecord, System};
use shared::enqueue::Delivery;
use shared::ports::{Cursor, GsCondition, GsOperator, GsQuery, SfAfter, SfSelect};

/// Whether cursor `a` comes before `b` in (modified, id) order.
pub(crate) fn before(a: &Cursor, b: &Cursor) -> bool {
    (a.timestamp_ms, &a.last_id) < (b.timestamp_ms, &b.last_id)
}

/// Whether a schedule reads the job's Salesforce records too: some field flows from Salesforce
/// and the job acts on Salesforce changes.
pub(crate) fn polls_salesforce(job: &Job) -> bool {
    let flows = job
        .fields
        .iter()
        .any(|f| f.flow.carries_from(System::Salesforce))
        || job.derived.iter().any(|d| d.target == System::Gainsight);
    let acts = job.events.from_salesforce.on_created != shared::domain::OnCreated::DoNothing
        || job.events.from_salesforce.on_updated != shared::domain::OnUpdated::DoNothing;
    flows && acts
}

/// The next `page` Gainsight records after `after`.
pub(crate) fn gainsight_page(job: &Job, after: &Cursor, page: usize) -> GsQuery {
    let id = &job.gainsight.id_field;
    let t = json!(after.timestamp_ms);
    GsQuery {
        any_of: vec![
            vec![GsCondition::new(
                GAINSIGHT_MODIFIED,
                GsOperator::Gt,
                vec![t.clone()],
            )],
            vec![
                GsCondition::new(GAINSIGHT_MODIFIED, GsOperator::Eq, vec![t]),
                GsCondition::new(id, GsOperator::Gt, vec![json!(after.last_id)]),
            ],
        ],
        limit: page,
        ..gainsight_base(job)
    }
}

/// A Timeline job reads only the activity types it syncs.
fn type_filter(job: &Job) -> Vec<GsCondition> {
    job.timeline
        .iter()
        .map(|t| {
            let types = t.types.iter().map(|t| json!(t)).collect();
            GsCondition::new(TYPE_FIELD, GsOperator::In, types)
        })
        .collect()
}

/// The job's Gainsight records in (modified, id) order, with every field it reads.
fn gainsight_base(job: &Job) -> GsQuery {
    let mut select: Vec<String> = vec![GAINSIGHT_MODIFIED.into()];
    select.extend(job.fields_read_from(System::Gainsight));
    select.sort();
    select.dedup();
    GsQuery {
        select,
        conditions: type_filter(job),
        order_by: vec![
            (GAINSIGHT_MODIFIED.into(), true),
            (job.gainsight.id_field.clone(), true),
        ],
        ..GsQuery::default()
    }
}

/// The next `page` Salesforce records after `after`, by `SystemModstamp` (which every change,
/// automated ones included, moves). Our own writes are read back too and recognised as echoes by
/// the ledger's field hashes: leaving out the records last changed by the integration user would
/// lose a person's edit that our write followed before the poll.
pub(crate) fn salesforce_page(job: &Job, after: &Cursor, page: usize) -> SfSelect {
    let id = &job.salesforce.id_field;
    let mut fields = job.fields_read_from(System::Salesforce);
    for f in ["CreatedDate", "LastModifiedDate", SALESFORCE_MODIFIED] {
        if !fields.iter().any(|s| s == f) {
            fields.push(f.into());
        }
    }
    SfSelect {
        fields,
        after: Some(SfAfter {
            field: SALESFORCE_MODIFIED.into(),
            at_ms: after.timestamp_ms,
            id_field: id.clone(),
            id: after.last_id.clone(),
        }),
        order_by: vec![SALESFORCE_MODIFIED.into(), id.clone()],
        limit: Some(page),
        ..SfSelect::from_object(&job.salesforce.object)
    }
}

/// When `source` last modified a record it answered (epoch ms).
fn modified(source: System, fields: &Fields) -> Option<i64> {
    match source {
        System::Gainsight => fields.get(GAINSIGHT_MODIFIED).and_then(Value::as_i64),
        System::Salesforce => fields
            .get(SALESFORCE_MODIFIED)
            .and_then(Value::as_str)
            .and_then(shared::time::parse_ms),
    }
}

/// One delivery per record version read from `source`, and the (modified, id) of the last.
pub(crate) fn versions(
    job: &Job,
    source: System,
    records: Vec<Fields>,
    participants: Vec<Option<Participants>>,
    now_ms: i64,
) -> (Vec<Delivery>, Option<Cursor>) {
    let mut last: Option<Cursor> = None;
    let mut deliveries = Vec::with_capacity(records.len());
    for (fields, participants) in records.into_iter().zip(participants) {
        let id = fields.get(job.id_field_in(source)).and_then(Value::as_str);
        let (Some(id), Some(modified)) = (id.map(str::to_string), modified(source, &fields)) else {
            continue;
        };
        let here = Cursor {
            timestamp_ms: modified,
            last_id: id.clone(),
        };
        if last.as_ref().is_none_or(|l| before(l, &here)) {
            last = Some(here);
        }
        let record = SourceRecord {
            source,
            object: job.object_in(source).to_string(),
            id,
            fields,
        };
        let mut change = ChangeEvent::polled(record, &job.name, modified, now_ms);
        change.participants = participants;
        deliveries.push(Delivery::single(change));
    }
    (deliveries, last)
}
