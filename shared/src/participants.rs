//! Resolves the Salesforce records a window of Timeline activities is linked to, in one batched
//! query per entity for the whole window (never one per activity): each external attendee's
//! email → the Gainsight Person → its Contact (WhoId); the activity's company → its Account
//! (WhatId). A Person or Company that does not carry its Salesforce id yet is looked up in the
//! ledger of the job that syncs it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::domain::mapping::text;
use crate::domain::timeline::{attendee_emails, company_of, Participants};
use crate::domain::{Fields, Jobs, LedgerKey, System};
use crate::ports::StoreError;
use crate::ports::{ApiError, GainsightApi, GsCondition, GsOperator, GsQuery, LedgerStore};

/// Rows Gainsight answers at most per query.
const QUERY_LIMIT: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("resolving activity participants: {0}")]
    Api(#[from] ApiError),
    #[error("resolving activity participants: {0}")]
    Store(#[from] StoreError),
}

/// One entity kind: the Gainsight object, the field the activities name it by, and the field
/// holding its Salesforce id.
struct Entity {
    object: &'static str,
    match_field: &'static str,
    sfid_field: &'static str,
}

const PERSON: Entity = Entity {
    object: "Person",
    match_field: "Email",
    sfid_field: "SfdcContactId",
};
const COMPANY: Entity = Entity {
    object: "Company",
    match_field: "Gsid",
    sfid_field: "SfdcAccountId",
};

/// The participants of each of `activities`, in order.
pub async fn resolve(
    activities: &[Fields],
    jobs: &Jobs,
    gainsight: &dyn GainsightApi,
    ledger: &dyn LedgerStore,
) -> Result<Vec<Participants>, ResolveError> {
    let emails: BTreeSet<String> = activities.iter().flat_map(attendee_emails).collect();
    let companies: BTreeSet<String> = activities
        .iter()
        .filter_map(|a| company_of(a).map(str::to_string))
        .collect();
    let contacts = salesforce_ids(&PERSON, &emails, jobs, gainsight, ledger).await?;
    let accounts = salesforce_ids(&COMPANY, &companies, jobs, gainsight, ledger).await?;
    Ok(activities
        .iter()
        .map(|a| Participants {
            who_id: attendee_emails(a)
                .iter()
                .find_map(|e| contacts.get(e).cloned()),
            what_id: company_of(a).and_then(|c| accounts.get(&c.to_lowercase()).cloned()),
        })
        .collect())
}

/// Salesforce id by (lower-cased) match value, for every value Gainsight or the ledger knows.
async fn salesforce_ids(
    entity: &Entity,
    values: &BTreeSet<String>,
    jobs: &Jobs,
    gainsight: &dyn GainsightApi,
    ledger: &dyn LedgerStore,
) -> Result<BTreeMap<String, String>, ResolveError> {
    let mut found = BTreeMap::new();
    let mut unlinked: Vec<(String, String)> = Vec::new();
    let values: Vec<&String> = values.iter().collect();
    for chunk in values.chunks(QUERY_LIMIT) {
        for row in gainsight
            .query(entity.object, &query(entity, chunk))
            .await?
        {
            let (Some(value), Some(gsid)) =
                (text(row.get(entity.match_field)), text(row.get("Gsid")))
            else {
                continue;
            };
            match text(row.get(entity.sfid_field)) {
                Some(sfid) => {
                    found.insert(value.to_lowercase(), sfid);
                }
                None => unlinked.push((value.to_lowercase(), gsid)),
            }
        }
    }
    found.extend(from_ledger(entity, unlinked, jobs, ledger).await?);
    Ok(found)
}

fn query(entity: &Entity, values: &[&String]) -> GsQuery {
    let mut select = vec!["Gsid".to_string(), entity.sfid_field.to_string()];
    if entity.match_field != "Gsid" {
        select.push(entity.match_field.to_string());
    }
    GsQuery {
        select,
        conditions: vec![GsCondition::new(
            entity.match_field,
            GsOperator::In,
            values.iter().map(|v| json!(v)).collect::<Vec<Value>>(),
        )],
        limit: values.len(),
        ..GsQuery::default()
    }
}

/// Salesforce ids the ledger of the entity's job holds for records Gainsight has not linked.
async fn from_ledger(
    entity: &Entity,
    unlinked: Vec<(String, String)>,
    jobs: &Jobs,
    ledger: &dyn LedgerStore,
) -> Result<Vec<(String, String)>, ResolveError> {
    let Some(job) = jobs.for_source(System::Gainsight, entity.object).next() else {
        return Ok(Vec::new());
    };
    if unlinked.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<LedgerKey> = unlinked
        .iter()
        .map(|(_, gsid)| LedgerKey::Gainsight(gsid.clone()))
        .collect();
    let records = ledger.ledgers(&job.name, &keys).await?;
    let by_gsid: BTreeMap<&str, &str> = records
        .iter()
        .filter_map(|r| Some((r.key.gainsight_id()?, r.salesforce_id.as_deref()?)))
        .collect();
    Ok(unlinked
        .iter()
        .filter_map(|(value, gsid)| Some((value.clone(), by_gsid.get(gsid.as_str())?.to_string())))
        .collect())
}
