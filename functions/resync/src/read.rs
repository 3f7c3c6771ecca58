//! Reading one page of a selection where the records live: by id (resolved through the ledger, a
//! Gainsight id or a Salesforce id), by ledger status, or by modified time at a source. Every read
//! is batched: one `IN` query per 500 Gainsight or 200 Salesforce ids, never one per record.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use shared::domain::change::{is_salesforce_id, GAINSIGHT_MODIFIED, SALESFORCE_MODIFIED};
use shared::domain::{Fields, Job, LedgerKey, SourceRecord, SyncStatus, System};
use shared::ports::{GsCondition, GsOperator, GsQuery, SfSelect};

use crate::request::Continuation;
use crate::{Resync, ResyncError, PAGE};

/// Ids per Gainsight `IN` query.
const GAINSIGHT_IDS_PER_QUERY: usize = 500;
/// Ids per Salesforce query: keeps the statement far below its length limit.
const SALESFORCE_IDS_PER_QUERY: usize = 200;

/// One page of a selection: the records read, the ids asked for that neither system has, and
/// where the next page starts (`None`: this was the last).
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<SourceRecord>,
    pub not_found: Vec<String>,
    pub next: Option<Continuation>,
}

impl Resync {
    /// The records of `ids[offset..offset + PAGE]`: ledger keys first (a GSID, or the Salesforce id
    /// of a linked or Salesforce-only pair; a linked pair read from `source`), then, for ids the
    /// ledger does not know, whichever system has them.
    pub(crate) async fn page_of_ids(
        &self,
        job: &Job,
        (ids, source): (&[String], System),
        offset: usize,
    ) -> Result<Page, ResyncError> {
        let end = (offset + PAGE).min(ids.len());
        let chunk: Vec<String> = ids[offset.min(end)..end].to_vec();
        let mut gainsight = BTreeSet::new();
        let mut salesforce = BTreeSet::new();
        let keys: Vec<LedgerKey> = chunk.iter().cloned().map(LedgerKey::Gainsight).collect();
        let known: BTreeMap<String, Option<String>> = (self.ledger.ledgers(&job.name, &keys))
            .await?
            .into_iter()
            .filter_map(|r| Some((r.key.gainsight_id()?.to_string(), r.salesforce_id)))
            .collect();
        // A linked pair: its GSID, or its Salesforce id when read from Salesforce.
        let linked = |gsid: String, sfid: Option<String>| match (source, sfid) {
            (System::Salesforce, Some(sfid)) => (System::Salesforce, sfid),
            _ => (System::Gainsight, gsid),
        };
        // Ids asked for that are read under another id (a GSID read as its Salesforce record).
        let mut read_as: BTreeMap<String, String> = BTreeMap::new();
        for id in &chunk {
            let read = match known.get(id) {
                Some(sfid) => Some(linked(id.clone(), sfid.clone())),
                None => match self.ledger.key_of_salesforce_id(&job.name, id).await? {
                    Some(LedgerKey::Gainsight(gsid)) => Some(linked(gsid, Some(id.clone()))),
                    Some(LedgerKey::SalesforceOnly(sfid)) => Some((System::Salesforce, sfid)),
                    None => None,
                },
            };
            if let Some((_, other)) = read.as_ref().filter(|(_, other)| other != id) {
                read_as.insert(id.clone(), other.clone());
            }
            match read {
                Some((System::Gainsight, id)) => {
                    gainsight.insert(id);
                }
                Some((System::Salesforce, id)) => {
                    salesforce.insert(id);
                }
                // Never synced: try both systems.
                None => {
                    gainsight.insert(id.clone());
                    if is_salesforce_id(id) {
                        salesforce.insert(id.clone());
                    }
                }
            };
        }
        let mut records = self.read_gainsight(job, &gainsight).await?;
        let from_gainsight: BTreeSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        // A record found in Gainsight is not read again from Salesforce.
        salesforce.retain(|id| !from_gainsight.contains(id.as_str()));
        records.extend(self.read_salesforce(job, &salesforce).await?);
        let not_found = chunk
            .into_iter()
            .filter(|id| {
                let under = read_as.get(id).unwrap_or(id);
                !records.iter().any(|r| mentions(job, r, under))
            })
            .collect();
        let next = (end < ids.len()).then(|| Continuation {
            offset: end,
            ..Default::default()
        });
        Ok(Page {
            records,
            not_found,
            next,
        })
    }

    /// The next `PAGE` ledger records carrying `status`, read where each lives.
    pub(crate) async fn page_of_status(
        &self,
        job: &Job,
        status: SyncStatus,
        after: Option<&str>,
    ) -> Result<Page, ResyncError> {
        let after: Option<LedgerKey> = after.and_then(|k| k.parse().ok());
        let ledger = self.ledger.as_ref();
        let found = ledger
            .by_status(&job.name, status, after.as_ref(), PAGE)
            .await?;
        let next = (found.len() == PAGE).then(|| Continuation {
            after_key: found.last().map(|r| r.key.to_string()),
            ..Default::default()
        });
        let gainsight = found
            .iter()
            .filter_map(|r| r.key.gainsight_id().map(str::to_string))
            .collect();
        let salesforce = found
            .iter()
            .filter_map(|r| r.key.salesforce_only_id().map(str::to_string))
            .collect();
        let mut records = self.read_gainsight(job, &gainsight).await?;
        records.extend(self.read_salesforce(job, &salesforce).await?);
        let not_found = found
            .iter()
            .filter(|l| !records.iter().any(|r| holds(&l.key, r)))
            .map(|l| l.key.to_string())
            .collect();
        Ok(Page {
            records,
            not_found,
            next,
        })
    }

    /// The next `PAGE` records of `source` modified at or after the continuation's time, in
    /// (modified, id) order.
    pub(crate) async fn page_since(
        &self,
        job: &Job,
        source: System,
        since_ms: i64,
        at: &Continuation,
    ) -> Result<Page, ResyncError> {
        let from = at.after_ms.unwrap_or(since_ms);
        let limit = PAGE + at.done_at_ms;
        let rows = match source {
            System::Gainsight => self.modified_in_gainsight(job, from, limit).await?,
            System::Salesforce => self.modified_in_salesforce(job, from, limit).await?,
        };
        let full = rows.len() == limit;
        let mut page = Page::default();
        let mut last: Option<(i64, usize)> = at.after_ms.map(|ms| (ms, at.done_at_ms));
        for (i, (modified, record)) in rows.into_iter().enumerate() {
            last = match last {
                Some((ms, n)) if ms == modified => Some((ms, n + 1)),
                _ => Some((modified, 1)),
            };
            // The first rows at the continuation's time were done by the previous page.
            if i < at.done_at_ms {
                continue;
            }
            page.records.extend(record);
        }
        page.next = full.then(|| Continuation {
            after_ms: last.map(|(ms, _)| ms),
            done_at_ms: last.map(|(_, n)| n).unwrap_or(0),
            ..Default::default()
        });
        Ok(page)
    }

    async fn modified_in_gainsight(
        &self,
        job: &Job,
        from: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Option<SourceRecord>)>, ResyncError> {
        let mut select = job.fields_read_from(System::Gainsight);
        select.push(GAINSIGHT_MODIFIED.into());
        select.sort();
        select.dedup();
        let query = GsQuery {
            select,
            conditions: vec![GsCondition::new(
                GAINSIGHT_MODIFIED,
                GsOperator::Gte,
                vec![json!(from)],
            )],
            order_by: vec![
                (GAINSIGHT_MODIFIED.into(), true),
                (job.gainsight.id_field.clone(), true),
            ],
            limit,
            any_of: Vec::new(),
            offset: 0,
        };
        let rows = self
            .ports
            .gainsight
            .query(&job.gainsight.object, &query)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let modified = r.get(GAINSIGHT_MODIFIED).and_then(Value::as_i64);
                (
                    modified.unwrap_or(from),
                    source_record(job, System::Gainsight, r),
                )
            })
            .collect())
    }

    async fn modified_in_salesforce(
        &self,
        job: &Job,
        from: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Option<SourceRecord>)>, ResyncError> {
        let select = SfSelect {
            fields: job.salesforce_read_fields(),
            since: Some((SALESFORCE_MODIFIED.into(), from)),
            order_by: vec![SALESFORCE_MODIFIED.into(), job.salesforce.id_field.clone()],
            limit: Some(limit),
            ..SfSelect::from_object(&job.salesforce.object)
        };
        let rows = self.salesforce.select(&select).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let modified = r
                    .get(SALESFORCE_MODIFIED)
                    .and_then(Value::as_str)
                    .and_then(shared::time::parse_ms);
                (
                    modified.unwrap_or(from),
                    source_record(job, System::Salesforce, r),
                )
            })
            .collect())
    }

    /// Gainsight records by GSID, one `IN` query per 500 ids.
    pub(crate) async fn read_gainsight(
        &self,
        job: &Job,
        ids: &BTreeSet<String>,
    ) -> Result<Vec<SourceRecord>, ResyncError> {
        let ids: Vec<&String> = ids.iter().collect();
        let mut records = Vec::new();
        for chunk in ids.chunks(GAINSIGHT_IDS_PER_QUERY) {
            let values = chunk.iter().map(|i| json!(i)).collect();
            let query = GsQuery {
                select: job.fields_read_from(System::Gainsight),
                conditions: vec![GsCondition::new(
                    &job.gainsight.id_field,
                    GsOperator::In,
                    values,
                )],
                any_of: Vec::new(),
                ..GsQuery::default()
            };
            let rows = self
                .ports
                .gainsight
                .query(&job.gainsight.object, &query)
                .await?;
            records.extend(
                rows.into_iter()
                    .filter_map(|r| source_record(job, System::Gainsight, r)),
            );
        }
        Ok(records)
    }

    /// Salesforce records by Id, one query per 200 ids.
    pub(crate) async fn read_salesforce(
        &self,
        job: &Job,
        ids: &BTreeSet<String>,
    ) -> Result<Vec<SourceRecord>, ResyncError> {
        let ids: Vec<String> = ids.iter().cloned().collect();
        let mut records = Vec::new();
        for chunk in ids.chunks(SALESFORCE_IDS_PER_QUERY) {
            let select = SfSelect {
                fields: job.salesforce_read_fields(),
                conditions: vec![(job.salesforce.id_field.clone(), chunk.to_vec())],
                ..SfSelect::from_object(&job.salesforce.object)
            };
            let rows = self.salesforce.select(&select).await?;
            records.extend(
                rows.into_iter()
                    .filter_map(|r| source_record(job, System::Salesforce, r)),
            );
        }
        Ok(records)
    }
}

/// Whether `record` is the one asked for as `id`: its own id, or the Salesforce id it carries.
fn mentions(job: &Job, record: &SourceRecord, id: &str) -> bool {
    record.id == id
        || job.identifiers.iter().any(|i| {
            let field = match record.source {
                System::Gainsight => &i.gainsight,
                System::Salesforce => &i.salesforce,
            };
            record.fields.get(field).and_then(Value::as_str) == Some(id)
        })
}

/// Whether `record` is the one the ledger keeps under `key`.
fn holds(key: &LedgerKey, record: &SourceRecord) -> bool {
    match (key, record.source) {
        (LedgerKey::Gainsight(gsid), System::Gainsight) => gsid == &record.id,
        (LedgerKey::SalesforceOnly(sfid), System::Salesforce) => sfid == &record.id,
        _ => false,
    }
}

/// A row read from `source` as the job's record there, if it carries its id.
pub(crate) fn source_record(job: &Job, source: System, fields: Fields) -> Option<SourceRecord> {
    let id = fields.get(job.id_field_in(source))?.as_str()?.to_string();
    Some(SourceRecord {
        source,
        object: job.object_in(source).to_string(),
        id,
        fields,
    })
}
