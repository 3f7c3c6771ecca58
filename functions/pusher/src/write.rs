//! Writes one group of commands (same target, object, key field and mode) through the ports, and
//! turns the per-record results into outcomes in the group's order.

use shared::domain::push::{
    plan_gainsight, plan_salesforce_update, GainsightPlan, Pending, WriteOutcome,
};
use shared::domain::{Fields, LookupRequest, System, WriteMode};
use shared::ports::{ApiError, RecordResult, Retryable};
use shared::resolve;
use std::time::Duration;

use crate::Pusher;

/// A target's answer for one record, as an outcome.
fn outcome_of(r: RecordResult) -> WriteOutcome {
    if r.success {
        return WriteOutcome::Synced { target_id: r.id };
    }
    if r.gone {
        return WriteOutcome::Gone {
            message: r.errors.join("; "),
        };
    }
    WriteOutcome::Failed {
        message: if r.errors.is_empty() {
            "refused without a message".into()
        } else {
            r.errors.join("; ")
        },
        retryable: r.retryable,
    }
}

fn outcomes(results: Vec<RecordResult>) -> Vec<WriteOutcome> {
    results.into_iter().map(outcome_of).collect()
}

/// Puts each result of the records sent back in its record's place.
fn merge(plan: Vec<Result<Fields, WriteOutcome>>, results: Vec<RecordResult>) -> Vec<WriteOutcome> {
    let mut results = results.into_iter();
    plan.into_iter()
        .map(|p| match p {
            Ok(_) => results
                .next()
                .map(outcome_of)
                .unwrap_or_else(WriteOutcome::no_result),
            Err(settled) => settled,
        })
        .collect()
}

/// Why a group's writes were not settled now.
pub(crate) enum Held {
    /// The call may succeed later: the messages go back to the queue.
    Retry(Vec<Pending>, ApiError),
    /// The target asked us to wait (a rate limit, or an outage that said for how long): the
    /// writes are sent again after that wait, without using up one of their deliveries. A rate
    /// limit that does not say how long (Salesforce's daily `REQUEST_LIMIT_EXCEEDED`) waits the
    /// longest deferral.
    Wait(Vec<Pending>, ApiError, Option<Duration>),
    /// The target refused our credentials for good: the job pauses until they are replaced.
    Paused(Vec<Pending>, ApiError),
    /// A Bulk API job took the writes and was still running when the pusher could wait no
    /// longer: a load's flush keeps them staged and collects the job's results next time.
    Running(Vec<Pending>, ApiError),
}

/// The group's outcomes, or why they wait. A call refused for good (other than for our
/// credentials) marks every record of the group error.
pub(crate) fn settle_group(
    object: &str,
    batch: Vec<Pending>,
    outcome: Result<Vec<WriteOutcome>, ApiError>,
) -> Result<Vec<(Pending, WriteOutcome)>, Held> {
    match outcome {
        Ok(outcomes) => Ok(batch.into_iter().zip(outcomes).collect()),
        Err(e @ ApiError::Auth { .. }) => {
            tracing::error!(object = %object, records = batch.len(), error = %e, "credentials refused; the job pauses");
            Err(Held::Paused(batch, e))
        }
        Err(e @ ApiError::RateLimited { .. }) => {
            tracing::warn!(object = %object, records = batch.len(), error = %e, "rate limited; writes deferred");
            let wait = e.retry_after();
            Err(Held::Wait(batch, e, wait))
        }
        Err(e @ (ApiError::StillRunning { .. } | ApiError::OutOfTime { .. })) => {
            tracing::info!(object = %object, records = batch.len(), error = %e, "write not completed in this invocation");
            Err(Held::Running(batch, e))
        }
        Err(e) if e.is_retryable() && e.retry_after().is_some() => {
            tracing::warn!(object = %object, records = batch.len(), error = %e, "unavailable for a while; writes deferred");
            let wait = e.retry_after();
            Err(Held::Wait(batch, e, wait))
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(object = %object, records = batch.len(), error = %e, "write failed; messages go back to the queue");
            Err(Held::Retry(batch, e))
        }
        Err(e) => {
            tracing::error!(object = %object, records = batch.len(), error = %e, "write refused; records marked error");
            let message = e.to_string();
            Ok(batch
                .into_iter()
                .map(|p| (p, WriteOutcome::failed(message.clone())))
                .collect())
        }
    }
}

impl Pusher {
    /// Whether `n` records of one Salesforce call for `job` go through a Bulk API 2.0 job: at or
    /// over the job's bulk threshold.
    pub(crate) fn goes_bulk(&self, job: Option<&str>, n: usize) -> bool {
        (job.and_then(|j| self.jobs.get(j))).is_some_and(|job| n >= job.bulk_threshold())
    }

    /// The id field of `system`'s records in the group's job.
    fn id_field(&self, system: System, batch: &[Pending]) -> String {
        batch
            .first()
            .and_then(|p| self.jobs.get(&p.command.job))
            .map(|job| job.id_field_in(system).to_string())
            .unwrap_or_default()
    }

    /// Writes one group to Salesforce: upsert or create on the external id, update by Id (looking
    /// Ids up by external id first, in one query, when the job may only update). Upserts and
    /// updates by Id at or over the job's bulk threshold go through one Bulk API 2.0 job.
    pub(crate) async fn write_salesforce(
        &self,
        object: &str,
        ext_field: Option<&str>,
        mode: WriteMode,
        batch: &[Pending],
    ) -> Result<Vec<WriteOutcome>, ApiError> {
        let records: Vec<Fields> = batch.iter().map(|p| p.command.fields.clone()).collect();
        let sf = &self.salesforce;
        let id_field = self.id_field(System::Salesforce, batch);
        let job = batch.first().map(|p| p.command.job.as_str());
        let bulk = self.goes_bulk(job, records.len());
        match (ext_field, mode) {
            (Some(ext), WriteMode::Upsert) if bulk => {
                Ok(outcomes(sf.bulk_upsert(object, ext, &records).await?))
            }
            (Some(ext), WriteMode::Upsert) => Ok(outcomes(sf.upsert(object, ext, &records).await?)),
            (Some(_), WriteMode::Create) => Ok(outcomes(sf.create(object, &records).await?)),
            (Some(ext), WriteMode::Update) => {
                let ids = self
                    .find_keys(System::Salesforce, object, ext, &id_field, batch)
                    .await?;
                let plan = plan_salesforce_update((object, ext, &id_field), batch, &ids);
                let ready: Vec<Fields> = plan
                    .iter()
                    .filter_map(|p| p.as_ref().ok().cloned())
                    .collect();
                let results = if ready.is_empty() {
                    Vec::new()
                } else {
                    sf.update(object, &ready).await?
                };
                Ok(merge(plan, results))
            }
            (None, _) => {
                let by_id: Vec<Fields> = batch
                    .iter()
                    .map(|p| p.command.fields_with_id(&id_field))
                    .collect();
                match bulk {
                    true => Ok(outcomes(sf.bulk_update(object, &by_id).await?)),
                    false => Ok(outcomes(sf.update(object, &by_id).await?)),
                }
            }
        }
    }

    /// The `returns` field of the target records matching each command's key value, in one
    /// query per 200 keys.
    async fn find_keys(
        &self,
        system: System,
        object: &str,
        key_field: &str,
        returns: &str,
        batch: &[Pending],
    ) -> Result<resolve::Found, ApiError> {
        let request = LookupRequest {
            job: batch
                .first()
                .map(|p| p.command.job.clone())
                .unwrap_or_default(),
            derived: 0,
            system,
            object: object.to_string(),
            match_fields: vec![key_field.to_string()],
            returns: returns.to_string(),
            tuples: batch
                .iter()
                .map(|p| vec![p.command.key.value().to_string()])
                .collect(),
        };
        resolve::find(self.salesforce.as_ref(), self.gainsight.as_ref(), &request).await
    }

    /// Writes one group to Gainsight: update by GSID, or match on key fields (one query per group)
    /// and then update the matches and insert the rest, as the job's event action allows.
    pub(crate) async fn write_gainsight(
        &self,
        object: &str,
        key_field: Option<&str>,
        mode: WriteMode,
        batch: &[Pending],
    ) -> Result<Vec<WriteOutcome>, ApiError> {
        let id_field = self.id_field(System::Gainsight, batch);
        let Some(key_field) = key_field else {
            return self
                .update_gainsight_by_id(object, &id_field, mode, batch)
                .await;
        };
        let gsids = self
            .find_keys(System::Gainsight, object, key_field, &id_field, batch)
            .await?;
        let plans = plan_gainsight((object, key_field, &id_field), mode, batch, &gsids);
        let pick = |want_update: bool| -> Vec<Fields> {
            plans
                .iter()
                .filter_map(|p| match (p, want_update) {
                    (GainsightPlan::Update(f), true) | (GainsightPlan::Insert(f), false) => {
                        Some(f.clone())
                    }
                    _ => None,
                })
                .collect()
        };
        let (updates, inserts) = (pick(true), pick(false));
        let gs = &self.gainsight;
        let keys = [id_field.clone()];
        let updated = if updates.is_empty() {
            Vec::new()
        } else {
            gs.update(object, &keys, &updates).await?
        };
        // An update result names no id: the record's GSID is the one it was addressed by.
        let mut updated = updated.into_iter().zip(&updates).map(|(mut r, f)| {
            r.id = r.id.or_else(|| {
                f.get(&id_field)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            });
            r
        });
        let inserted = if inserts.is_empty() {
            Vec::new()
        } else {
            gs.insert(object, &inserts).await?
        };
        let mut inserted = inserted.into_iter();
        Ok(plans
            .into_iter()
            .map(|p| {
                let result = match p {
                    GainsightPlan::Update(_) => updated.next(),
                    GainsightPlan::Insert(_) => inserted.next(),
                    GainsightPlan::Done(settled) => return settled,
                };
                result
                    .map(outcome_of)
                    .unwrap_or_else(WriteOutcome::no_result)
            })
            .collect())
    }

    /// A group addressed by GSID: updated, unless the job only creates.
    async fn update_gainsight_by_id(
        &self,
        object: &str,
        id_field: &str,
        mode: WriteMode,
        batch: &[Pending],
    ) -> Result<Vec<WriteOutcome>, ApiError> {
        if mode == WriteMode::Create {
            let exists =
                format!("the {object} exists already; the job creates only, it never updates");
            return Ok(batch
                .iter()
                .map(|_| WriteOutcome::failed(exists.clone()))
                .collect());
        }
        let records: Vec<Fields> = batch
            .iter()
            .map(|p| p.command.fields_with_id(id_field))
            .collect();
        let keys = [id_field.to_string()];
        Ok(outcomes(
            self.gainsight.update(object, &keys, &records).await?,
        ))
    }
}
