//! Which of a first load's writes the target system would refuse, decided before anything is
//! written: every value a create or a pair's update would send is checked against the target
//! field as its system describes it (data type, length, restricted picklist), after the source
//! value is read as its own field's type, the way the mapper checks a change; a create that
//! would leave a required field of the target empty is refused too. A refused row is listed
//! with every reason and not written; a refused pair is still linked.

use serde_json::Value;

use super::{Action, PlanRow};
use crate::domain::schema::{convert, normalize_source, ObjectSchema, Schemas};
use crate::domain::{Fields, Job, System};

/// Both sides' records of a row, as read.
pub struct Records<'a> {
    pub gainsight: Option<&'a Fields>,
    pub salesforce: Option<&'a Fields>,
}

impl<'a> Records<'a> {
    fn of(&self, system: System) -> Option<&'a Fields> {
        match system {
            System::Gainsight => self.gainsight,
            System::Salesforce => self.salesforce,
        }
    }
}

/// Why the target would refuse `row`'s write, every reason joined; `None` when it would take
/// it, when the row writes nothing, or when the target object was not described.
pub fn refusal(job: &Job, schemas: &Schemas, row: &PlanRow, records: &Records) -> Option<String> {
    let reasons = match &row.action {
        Action::CreateInSalesforce => creation(job, schemas, System::Gainsight, records),
        Action::CreateInGainsight => creation(job, schemas, System::Salesforce, records),
        Action::Pair(_) => updates(job, schemas, row),
        Action::NoTwin(_) | Action::NotLoaded(_) | Action::Ambiguous { .. } => Vec::new(),
    };
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The objects a write from `source` reads and writes, as described.
fn described<'s>(
    job: &Job,
    schemas: &'s Schemas,
    source: System,
) -> (Option<&'s ObjectSchema>, Option<&'s ObjectSchema>) {
    let object = |system: System| schemas.get(system, job.object_in(system));
    (object(source), object(source.other()))
}

/// The reasons a record of `source` created in the other system would be refused.
fn creation(job: &Job, schemas: &Schemas, source: System, records: &Records) -> Vec<String> {
    let (Some(record), (from, Some(to))) = (records.of(source), described(job, schemas, source))
    else {
        return Vec::new();
    };
    let fields = job.fields.iter().filter(|m| m.flow.carries_from(source));
    (fields.filter_map(|m| {
        let field = m.field_in(source);
        let raw = record.get(field).cloned().unwrap_or(Value::Null);
        let value = normalize_source(&raw, from.and_then(|o| o.field(field)));
        check(to, m.field_in(source.other()), &value)
    }))
    .collect()
}

/// The reasons a pair's updates would be refused, each checked on the side it is written to.
fn updates(job: &Job, schemas: &Schemas, row: &PlanRow) -> Vec<String> {
    (row.updates.iter())
        .filter_map(|u| {
            let source = u.target.other();
            let (from, Some(to)) = described(job, schemas, source) else {
                return None;
            };
            let source_field = (job.fields.iter())
                .find(|m| m.field_in(u.target) == u.field)
                .map(|m| m.field_in(source));
            let source_schema = source_field.and_then(|f| from.and_then(|o| o.field(f)));
            check(to, &u.field, &normalize_source(&u.value, source_schema))
        })
        .collect()
}

/// Why `to` would refuse `value` in `field`: a required field left empty, or a value its type,
/// length or picklist does not take. A field `to` does not describe is not checked.
fn check(to: &ObjectSchema, field: &str, value: &Value) -> Option<String> {
    let schema = to.field(field)?;
    if schema.required && super::text(value).is_none() {
        return Some(format!(
            "{}.{field} is required and would be empty",
            to.name
        ));
    }
    (convert(value, schema, to.system).err()).map(|e| format!("{}.{e}", to.name))
}
