//! Writes back to the source side (ids learnt, values restored after a conflict) as writes in
//! their own right: made once the ledger is written, and when that fails, sent to the writes
//! queue on their own (`WritesMessage::Side`), where they are retried and dead-lettered like any
//! write; one refused for good, or on its last delivery, marks its pair error saying what was not
//! written.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use shared::domain::load::SideWriteMessage;
use shared::domain::push::SideWrite;
use shared::domain::waiting::{parents_of, ParentKey};
use shared::domain::{LedgerUpdate, LineOutcome, RunLine, Runs, System};
use shared::ports::{ApiError, LedgerWrite, Retryable};

use crate::Pusher;

/// How long a write back that failed waits before it is tried again on its own.
pub const SIDE_RETRY_DELAY: Duration = Duration::from_secs(10);

/// A write back that did not go through, with why and whether it may later.
pub(crate) struct FailedSide {
    pub side: SideWrite,
    pub error: String,
    pub retryable: bool,
    /// Its Bulk API job was still running when the pusher could wait no longer: the same write
    /// backs made again collect that job's results.
    pub running: bool,
}

impl Pusher {
    /// Makes `side_writes`, one call per object (a Bulk API `update` job for Salesforce when
    /// they reach the job's bulk threshold, as a load's write backs do); those that did not go
    /// through.
    pub(crate) async fn write_sides(&self, side_writes: Vec<SideWrite>) -> Vec<FailedSide> {
        let mut by_object: BTreeMap<(System, String, String), Vec<SideWrite>> = BTreeMap::new();
        for w in side_writes {
            let group = (w.system, w.object.clone(), w.id_field.clone());
            by_object.entry(group).or_default().push(w);
        }
        let mut failed = Vec::new();
        for ((system, object, id_field), writes) in by_object {
            let records: Vec<shared::domain::Fields> =
                writes.iter().map(|w| w.fields.clone()).collect();
            let bulk = self.goes_bulk(writes.first().map(|w| w.job.as_str()), records.len());
            let written = match system {
                System::Salesforce if bulk => self.salesforce.bulk_update(&object, &records).await,
                System::Salesforce => self.salesforce.update(&object, &records).await,
                System::Gainsight => {
                    let keys = std::slice::from_ref(&id_field);
                    self.gainsight.update(&object, keys, &records).await
                }
            };
            failed.extend(refused(writes, written));
        }
        failed
    }

    /// Sends write backs that failed to the writes queue on their own, after a short delay; one
    /// that cannot be sent either marks its pair error, so it is never lost silently.
    pub(crate) async fn send_sides_alone(
        &self,
        failed: Vec<FailedSide>,
        runs: &mut Runs,
        now_ms: i64,
    ) {
        let (retry, gave_up): (Vec<FailedSide>, Vec<FailedSide>) =
            failed.into_iter().partition(|f| f.retryable);
        let mut lost = gave_up;
        if let (Some((queue, _)), false) = (&self.deferral, retry.is_empty()) {
            let bodies: Vec<String> = retry
                .iter()
                .filter_map(|f| {
                    let message = SideWriteMessage {
                        side_write: f.side.clone(),
                    };
                    serde_json::to_string(&message).ok()
                })
                .collect();
            let sent = queue.send_later(&bodies, SIDE_RETRY_DELAY).await;
            for (f, result) in retry.into_iter().zip(sent) {
                match result {
                    Ok(()) => {
                        tracing::warn!(job = %f.side.job, ledger_key = %f.side.ledger_key, error = %f.error, "write back failed; sent to the writes queue on its own");
                        let line = RunLine::new(f.side.ledger_key.to_string(), LineOutcome::Queued)
                            .message(format!(
                                "write back to the {} {} queued again: {}",
                                f.side.system.label(),
                                f.side.object,
                                f.error
                            ));
                        runs.line(Some(&f.side.job), line);
                    }
                    Err(e) => lost.push(FailedSide {
                        error: format!("{}; it could not be queued again either: {e}", f.error),
                        ..f
                    }),
                }
            }
        } else {
            lost.extend(retry);
        }
        self.record_sides_failed(lost, runs, now_ms).await;
    }

    /// Makes the write backs the writes queue delivered; the ids of the messages to deliver
    /// again. One refused for good, or failing on its last delivery, marks its pair error.
    pub(crate) async fn side_messages(
        &self,
        sides: Vec<(String, SideWrite)>,
        last: &HashSet<String>,
        runs: &mut Runs,
        now_ms: i64,
    ) -> Vec<String> {
        if sides.is_empty() {
            return Vec::new();
        }
        let (ids, writes): (Vec<String>, Vec<SideWrite>) = sides.into_iter().unzip();
        let failed = self.write_sides(writes.clone()).await;
        // A twin's id written back at last may be what a waiting change looks its parent up by.
        let parents: Vec<ParentKey> = (writes.iter())
            .filter(|w| !failed.iter().any(|f| f.side == **w))
            .flat_map(|w| self.parents_written(w))
            .collect();
        self.replay_waiting(&parents, runs).await;
        let mut again = Vec::new();
        let mut given_up = Vec::new();
        for f in failed {
            let at = writes.iter().position(|w| *w == f.side);
            let id = at.and_then(|i| ids.get(i)).cloned().unwrap_or_default();
            if f.retryable && !last.contains(&id) {
                again.push(id);
            } else {
                given_up.push(f);
            }
        }
        self.record_sides_failed(given_up, runs, now_ms).await;
        again
    }

    /// The parents a write back made its record: the pair's ids, and the fields written.
    pub(crate) fn parents_written(&self, w: &SideWrite) -> Vec<ParentKey> {
        let Some(job) = self.jobs.get(&w.job) else {
            return Vec::new();
        };
        let own_id = w.fields.get(&w.id_field).and_then(|v| v.as_str());
        let sfid = match w.system {
            System::Salesforce => own_id,
            System::Gainsight => None,
        };
        let gsid = w.ledger_key.gainsight_id();
        parents_of(&self.jobs, job, (gsid, sfid), Some((w.system, &w.fields)))
    }

    /// Marks the pairs of write backs that will not be made error, saying what was not written.
    async fn record_sides_failed(&self, failed: Vec<FailedSide>, runs: &mut Runs, now_ms: i64) {
        if failed.is_empty() {
            return;
        }
        let writes: Vec<LedgerWrite> = failed
            .iter()
            .map(|f| {
                let message = f.side.failed_message(&f.error);
                let line = RunLine::new(f.side.ledger_key.to_string(), LineOutcome::Error)
                    .message(&message);
                runs.line(Some(&f.side.job), line);
                let run = runs.id_for(Some(&f.side.job)).to_string();
                let update = LedgerUpdate::Failed { message };
                LedgerWrite::new(&f.side.job, f.side.ledger_key.clone(), update, &run)
            })
            .collect();
        if let Err(e) = self.ledger.record_many(&writes, now_ms).await {
            tracing::error!(records = writes.len(), error = %e, "write backs that failed not recorded in the ledger");
        }
    }
}

/// The writes of one call that did not go through: every one when the call failed, else those
/// whose record the system refused.
fn refused(
    writes: Vec<SideWrite>,
    written: Result<Vec<shared::ports::RecordResult>, ApiError>,
) -> Vec<FailedSide> {
    match written {
        Ok(results) => {
            let mut results = results.into_iter();
            writes
                .into_iter()
                .filter_map(|side| match results.next() {
                    Some(r) if r.success => None,
                    Some(r) => Some(FailedSide {
                        side,
                        error: r.errors.join("; "),
                        retryable: r.retryable,
                        running: false,
                    }),
                    None => Some(FailedSide {
                        side,
                        error: "no result for this record".into(),
                        retryable: true,
                        running: false,
                    }),
                })
                .collect()
        }
        Err(e) => {
            // Refused credentials pause a job's writes rather than fail them (the session may be
            // renewed, or an admin re-authorize): a write back waits through the queue as well,
            // and is given up only on its last delivery.
            let waits = e.is_retryable() || matches!(e, ApiError::Auth { .. });
            let running = matches!(e, ApiError::StillRunning { .. });
            let (error, retryable) = (e.to_string(), waits);
            writes
                .into_iter()
                .map(|side| FailedSide {
                    side,
                    error: error.clone(),
                    retryable,
                    running,
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::LedgerKey;

    fn side() -> SideWrite {
        SideWrite::new(
            ("case_case", &LedgerKey::Gainsight("G1".into())),
            (System::Salesforce, "Case"),
            ("Id", "5005g0000000227AAA"),
            ("Gainsight_Case_Id__c", serde_json::json!("G1")),
        )
    }

    /// An expired session the client could not renew is not the record's fault: the write back
    /// goes to the queue again instead of marking its pair error at once (seen in a 400-change
    /// soak: 6 Cases marked error by an injected expired session).
    #[test]
    fn a_write_back_refused_for_its_credentials_waits_for_another_delivery() {
        let auth = ApiError::Auth {
            system: "Salesforce",
            message: "Session expired or invalid".into(),
        };
        let failed = refused(vec![side()], Err(auth));
        assert!(failed[0].retryable, "{}", failed[0].error);
        let rejected = ApiError::Rejected {
            system: "Salesforce",
            status: 400,
            code: "INVALID_FIELD".into(),
            message: "no such field".into(),
        };
        assert!(!refused(vec![side()], Err(rejected))[0].retryable);
    }
}
