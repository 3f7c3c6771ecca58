//! How a group of commands whose target records were looked up by key becomes calls: which
//! records are updated (by the id found), which inserted, and which settle without a call (no
//! match for an update-only job, several matches, a create-only job that found one).

use std::collections::BTreeMap;

use super::{Pending, WriteOutcome};
use crate::domain::{Fields, WriteMode};

/// Values found per match tuple: what a lookup (of a derived mapping, or of a group's key field)
/// answered.
pub type Found = BTreeMap<Vec<String>, Vec<String>>;

/// What to do with one record of a Gainsight group.
#[derive(Clone, Debug, PartialEq)]
pub enum GainsightPlan {
    /// Update the record with these fields (its GSID included).
    Update(Fields),
    Insert(Fields),
    /// Settled without a call.
    Done(WriteOutcome),
}

fn matches<'a>(found: &'a Found, value: &str) -> &'a [String] {
    found
        .get(std::slice::from_ref(&value.to_string()))
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn with_id(fields: &Fields, id_field: &str, id: &str) -> Fields {
    let mut fields = fields.clone();
    fields.insert(id_field.into(), id.into());
    fields
}

/// A Gainsight group keyed on `key_field`: update the one match, insert where the job may
/// create, settle the rest.
pub fn plan_gainsight(
    (object, key_field, id_field): (&str, &str, &str),
    mode: WriteMode,
    batch: &[Pending],
    found: &Found,
) -> Vec<GainsightPlan> {
    batch
        .iter()
        .map(|p| {
            let value = p.command.key.value();
            let cmd_fields = &p.command.fields;
            match (matches(found, value), mode) {
                (many, _) if many.len() > 1 => GainsightPlan::Done(WriteOutcome::failed(format!(
                    "{} {object} records have {key_field} = {value:?}; cannot tell which to write",
                    many.len()
                ))),
                ([_], WriteMode::Create) => GainsightPlan::Done(WriteOutcome::failed(format!(
                    "a {object} with {key_field} = {value:?} exists already; the job creates only, it never updates"
                ))),
                ([gsid], _) => GainsightPlan::Update(with_id(cmd_fields, id_field, gsid)),
                (_, WriteMode::Update) => GainsightPlan::Done(WriteOutcome::Unmatched {
                    reason: unmatched(object, key_field, value),
                }),
                _ => GainsightPlan::Insert(cmd_fields.clone()),
            }
        })
        .collect()
}

/// An update-only Salesforce group keyed on external id `ext`: the record to update by its Id,
/// or the outcome when there is not exactly one.
pub fn plan_salesforce_update(
    (object, ext, id_field): (&str, &str, &str),
    batch: &[Pending],
    found: &Found,
) -> Vec<Result<Fields, WriteOutcome>> {
    batch
        .iter()
        .map(|p| {
            let value = p.command.key.value();
            match matches(found, value) {
                [id] => Ok(with_id(&p.command.fields, id_field, id)),
                [] => Err(WriteOutcome::Unmatched {
                    reason: unmatched(object, ext, value),
                }),
                many => Err(WriteOutcome::failed(format!(
                    "{} {object} records have {ext} = {value:?}; cannot tell which to update",
                    many.len()
                ))),
            }
        })
        .collect()
}

/// Why an update found no twin, and what becomes of it.
fn unmatched(object: &str, field: &str, value: &str) -> String {
    format!(
        "no {object} has {field} = {value:?}; the job only updates on update events, it never creates; \
         the change is kept and goes along with the {object}'s creation if one is on its way"
    )
}
