//! Reading what both systems hold for a job's first load (`domain::first_load::Snapshot`):
//! Salesforce through one Bulk API 2.0 query job, set by set; Gainsight page by page; the job's
//! ledger for the pairs it already has; both objects' describes, which the plan checks its writes
//! against. Used by the resync function's load and by `syncctl load
//! --dry-run`, so the preview reads exactly what the load reads.

use std::collections::HashMap;

use crate::domain::change::GAINSIGHT_MODIFIED;
use crate::domain::first_load::{Snapshot, Table};
use crate::domain::{Job, LedgerKey, Schemas, System};
use crate::ports::{
    ApiError, GainsightApi, GsQuery, LedgerStore, SalesforceApi, SalesforceBulkRead, SfSelect,
    StoreError,
};

/// Rows asked for per Salesforce results set (`maxRecords`): a million records in 4 sets when
/// Salesforce answers whole sets; by its size limits it may answer fewer, and the locator goes on.
/// A set is held as the text it came as (tens of MB at this size) and its rows are put in the
/// load's table one at a time.
const SET: usize = 250_000;
/// Ledger records per page.
const LEDGER_PAGE: usize = 1_000;
/// Gainsight records per query call (its most per call), each page put in the load's table as
/// it comes, so the records are never held twice.
const GAINSIGHT_PAGE: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ports a snapshot is read through.
pub struct Sources<'a> {
    pub salesforce: &'a dyn SalesforceBulkRead,
    /// For the describe of the job's Salesforce object.
    pub salesforce_api: &'a dyn SalesforceApi,
    pub gainsight: &'a dyn GainsightApi,
    pub ledger: &'a dyn LedgerStore,
}

/// What both systems hold for `job`, and its ledger's pairs; `progress` is told what is being
/// read as the reading goes.
pub async fn read(
    job: &Job,
    sources: Sources<'_>,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Snapshot, SnapshotError> {
    let salesforce = read_salesforce(sources.salesforce, job, progress).await?;
    progress(format!(
        "reading {} records from Gainsight",
        job.gainsight.object
    ));
    let gainsight = read_gainsight(sources.gainsight, job).await?;
    progress("reading the ledger".into());
    let linked = ledger_pairs(sources.ledger, job).await?;
    let mut schemas = Schemas::default();
    schemas.insert(
        sources
            .salesforce_api
            .describe(&job.salesforce.object)
            .await?,
    );
    schemas.insert(sources.gainsight.describe(&job.gainsight.object).await?);
    Ok(Snapshot {
        gainsight,
        salesforce,
        linked,
        schemas,
    })
}

/// The pairs of `job`'s ledger (GSID to Salesforce id), page by page; only the ids are kept.
async fn ledger_pairs(
    ledger: &dyn LedgerStore,
    job: &Job,
) -> Result<HashMap<String, String>, StoreError> {
    let mut pairs = HashMap::new();
    let mut after: Option<LedgerKey> = None;
    loop {
        let page = ledger.list(&job.name, after.as_ref(), LEDGER_PAGE).await?;
        let n = page.len();
        after = page.last().map(|r| r.key.clone());
        pairs.extend(
            (page.into_iter())
                .filter_map(|r| Some((r.key.gainsight_id()?.to_string(), r.salesforce_id?))),
        );
        if n < LEDGER_PAGE {
            return Ok(pairs);
        }
    }
}

/// Every record of the job's Salesforce object with the fields the plan compares, set by set.
async fn read_salesforce(
    sf: &dyn SalesforceBulkRead,
    job: &Job,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Table, ApiError> {
    // What a resync reads (so a load's write can be made from these values), and the match keys.
    let mut fields = job.salesforce_read_fields();
    fields.extend(job.match_keys.iter().map(|k| k.salesforce.clone()));
    fields.sort();
    fields.dedup();
    let select = SfSelect {
        fields,
        ..SfSelect::from_object(&job.salesforce.object)
    };
    let object = &job.salesforce.object;
    progress(format!(
        "reading {object}s from Salesforce (one Bulk API query job)"
    ));
    let read = sf.start_bulk_read(&select).await?;
    let (mut rows, mut locator) = (Table::default(), None);
    loop {
        let set = sf.bulk_read_set(&read, locator.as_deref(), SET).await?;
        for row in set.rows {
            rows.push(row?);
        }
        progress(format!(
            "reading {object} records from Salesforce: {}",
            rows.len()
        ));
        match set.next {
            Some(next) => locator = Some(next),
            None => return Ok(rows),
        }
    }
}

/// Every record of the job's Gainsight object with the fields the plan compares, page by page
/// in GSID order: pages read by offset from an unordered query may overlap or miss records, as
/// the store is free to answer each call in another order.
async fn read_gainsight(gs: &dyn GainsightApi, job: &Job) -> Result<Table, ApiError> {
    let mut select = job.fields_read_from(System::Gainsight);
    select.extend(job.match_keys.iter().map(|k| k.gainsight.clone()));
    select.push(GAINSIGHT_MODIFIED.into());
    select.sort();
    select.dedup();
    let mut table = Table::default();
    let mut query = GsQuery {
        select,
        order_by: vec![(job.gainsight.id_field.clone(), true)],
        limit: GAINSIGHT_PAGE,
        ..GsQuery::default()
    };
    loop {
        query.offset = table.len();
        let page = gs.query(&job.gainsight.object, &query).await?;
        let n = page.len();
        table.extend(page);
        if n < GAINSIGHT_PAGE {
            return Ok(table);
        }
    }
}
