//! Resync function, invoked by hand (`syncctl resync`): re-reads chosen records where they live
//! and queues them as forced changes, which echo suppression does not skip (event actions still
//! apply, and a record the other side never had is created). It answers with how many it queued
//! and its run id. A large selection is done a page at a time: the answer then carries the request
//! for the next page, which the caller sends as a new invocation, so none runs into the timeout.

mod first_load;
mod read;
pub mod request;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shared::adapters::AwsClients;
use shared::domain::first_load::steps::FirstLoad;
use shared::domain::load;
use shared::domain::{ChangeEvent, Job, Jobs, LineOutcome, RunFunction, RunId, RunLine, Runs};
use shared::lambda::store_runs;
use shared::ports::{
    FirstLoadStore, LedgerStore, RunStore, SalesforceApi, SalesforceBulkRead, SecretsError,
    SourcePorts,
};

pub use request::{Continuation, LoadCommand, RequestError, ResyncRequest, Selection};

/// Records per invocation: a page is read, queued and logged well within the function's timeout.
pub const PAGE: usize = 2_000;

/// Table, queues, the Gainsight tenant and the Salesforce org.
pub type Config = shared::config::ReadConfig;

/// What one invocation queued.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResyncReport {
    pub job: String,
    /// This invocation's run (`syncctl logs <run>`).
    pub run: RunId,
    pub queued: usize,
    /// Ids asked for that neither system has.
    pub not_found: Vec<String>,
    /// The request for the next page, to send as is; absent when the selection is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<ResyncRequest>,
    /// A first load: where it stands after this invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<FirstLoad>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResyncError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    UnknownJob(#[from] shared::domain::UnknownJob),
    #[error("run {0} is not stored (runs expire after RUN_TTL_DAYS, 30 days by default); resync by ids or status instead")]
    UnknownRun(RunId),
    #[error("run {0} belongs to no job (a webhook delivery); resync its records by ids")]
    RunWithoutJob(RunId),
    #[error(transparent)]
    Api(#[from] shared::ports::ApiError),
    #[error(transparent)]
    Store(#[from] shared::ports::StoreError),
    #[error("{0} changes could not be queued; invoke again")]
    Queue(usize),
    #[error("job {0} has no first load in progress; start one with `syncctl load --job {0}`")]
    NoLoad(String),
    #[error(transparent)]
    Snapshot(#[from] shared::snapshot::SnapshotError),
    /// The job is paused or deactivated: nothing is read or queued for it.
    #[error("{0}")]
    Stopped(String),
}

pub struct Resync {
    ports: SourcePorts,
    ledger: Arc<dyn LedgerStore>,
    runs: Arc<dyn RunStore>,
    first_loads: Arc<dyn FirstLoadStore>,
    salesforce: Arc<dyn SalesforceApi>,
    bulk: Arc<dyn SalesforceBulkRead>,
    /// Which jobs are stopped; without it every job runs.
    job_states: Option<shared::ports::JobStateCache>,
}

impl Resync {
    pub fn new<S, F>(ports: SourcePorts, store: Arc<S>, salesforce: Arc<F>) -> Self
    where
        S: LedgerStore + RunStore + FirstLoadStore + 'static,
        F: SalesforceApi + SalesforceBulkRead + 'static,
    {
        Self {
            ports,
            ledger: store.clone(),
            runs: store.clone(),
            first_loads: store,
            salesforce: salesforce.clone(),
            bulk: salesforce,
            job_states: None,
        }
    }

    /// Which jobs are stopped is read from `states`: a stopped job is neither resynced nor
    /// loaded (a load may still be cancelled).
    pub fn with_job_states(mut self, states: shared::ports::JobStateCache) -> Self {
        self.job_states = Some(states);
        self
    }

    pub async fn from_aws(
        config: &Config,
        clients: &AwsClients,
        jobs: Jobs,
    ) -> Result<Self, SecretsError> {
        let aws = &config.source.aws;
        let store = Arc::new(clients.state_store(aws));
        let resync = Self::new(
            clients.source_ports(&config.source, jobs).await?,
            store.clone(),
            Arc::new(clients.salesforce(aws, &config.salesforce).await?),
        );
        Ok(resync.with_job_states(shared::ports::JobStateCache::new(store)))
    }

    pub async fn handle(&self, request: ResyncRequest) -> Result<ResyncReport, ResyncError> {
        self.handle_at(request, shared::time::now_ms()).await
    }

    /// Checks the request, reads one page of the selection and queues it as forced changes.
    pub async fn handle_at(
        &self,
        request: ResyncRequest,
        now_ms: i64,
    ) -> Result<ResyncReport, ResyncError> {
        let (job, selection) = self.resolve(&request).await?;
        if !matches!(selection, Selection::Load(LoadCommand::Cancel)) {
            self.refuse_stopped(job, now_ms).await?;
        }
        if let Selection::Load(command) = selection {
            return self.first_load(job, (command, &request), now_ms).await;
        }
        let at = request.continuation.clone().unwrap_or_default();
        let mut runs = self.run_of(job, &request, &at, now_ms).await?;
        let run_job = Some(job.name.as_str());
        let run = runs.id_for(run_job);
        let queued = self
            .page_and_queue(job, &selection, &at, &mut runs, now_ms)
            .await;
        let more = matches!(&queued, Ok((_, page)) if page.next.is_some());
        if let Err(e) = &queued {
            runs.fail(run_job, e.to_string());
        }
        if more {
            // One run for the whole resync: in progress until its last page.
            if let Err(e) = self.runs.put_runs(&runs.pause()).await {
                tracing::warn!(run = %run, error = %e, "run not stored");
            }
        } else {
            store_runs(self.runs.as_ref(), runs).await;
        }
        let (queued, page) = queued?;
        tracing::info!(job = %job.name, run = %run, queued, missing = page.not_found.len(), more, "resync queued");
        Ok(ResyncReport {
            job: job.name.clone(),
            run: run.clone(),
            queued,
            not_found: page.not_found,
            continuation: page.next.map(|next| ResyncRequest {
                continuation: Some(Continuation {
                    run: Some(run),
                    ..next
                }),
                ..request
            }),
            load: None,
        })
    }

    /// Refuses a stopped job, saying how to start it again.
    async fn refuse_stopped(&self, job: &Job, now_ms: i64) -> Result<(), ResyncError> {
        let Some(states) = &self.job_states else {
            return Ok(());
        };
        match states.stopped(now_ms).await.get(&job.name) {
            Some(status) => Err(ResyncError::Stopped(format!(
                "nothing resynced or loaded: {}",
                status.stopped_line(&job.name)
            ))),
            None => Ok(()),
        }
    }

    /// This invocation's run: a new one, or the one of the resync's first page, continued.
    async fn run_of(
        &self,
        job: &Job,
        request: &ResyncRequest,
        at: &Continuation,
        now_ms: i64,
    ) -> Result<Runs, ResyncError> {
        if let Some(id) = &at.run {
            if let Some(run) = self.runs.run(id).await? {
                return Ok(Runs::resume(RunFunction::Resync, run));
            }
        }
        let seed = serde_json::to_string(request).unwrap_or_default();
        let mut runs = Runs::new(RunFunction::Resync, "resync", now_ms, &seed);
        let run_job = Some(job.name.as_str());
        runs.objects(run_job, &job.gainsight.object, Some(&job.salesforce.object));
        Ok(runs)
    }

    /// The job and the selection; a run's selection is the ids of its failed records.
    async fn resolve(&self, request: &ResyncRequest) -> Result<(&Job, Selection), ResyncError> {
        let selection = request.selection()?;
        let Selection::Run(id) = selection else {
            let name = request.job.as_deref().unwrap_or_default();
            return Ok((self.ports.jobs.named(name)?, selection));
        };
        let run = self
            .runs
            .run(&id)
            .await?
            .ok_or_else(|| ResyncError::UnknownRun(id.clone()))?;
        let name = run.job.ok_or(ResyncError::RunWithoutJob(id))?;
        let mut failed: Vec<String> = run
            .log
            .into_iter()
            .filter(|l| l.outcome == LineOutcome::Error)
            .map(|l| l.record)
            .collect();
        failed.sort();
        failed.dedup();
        let selection = Selection::Ids {
            ids: failed,
            source: shared::domain::System::Gainsight,
        };
        Ok((self.ports.jobs.named(&name)?, selection))
    }

    /// Reads one page, queues its records and logs them in the run.
    async fn page_and_queue(
        &self,
        job: &Job,
        selection: &Selection,
        at: &Continuation,
        runs: &mut Runs,
        now_ms: i64,
    ) -> Result<(usize, read::Page), ResyncError> {
        let page = match selection {
            Selection::Ids { ids, source } => {
                self.page_of_ids(job, (ids, *source), at.offset).await?
            }
            Selection::Status(status) => {
                self.page_of_status(job, *status, at.after_key.as_deref())
                    .await?
            }
            Selection::Since { source, since_ms } => {
                self.page_since(job, *source, *since_ms, at).await?
            }
            // Resolved to ids above; a load never reaches here.
            Selection::Run(_) | Selection::Load(_) => read::Page::default(),
        };
        let run_job = Some(job.name.as_str());
        let run = runs.id_for(run_job).to_string();
        let read = match selection {
            Selection::Since { .. } => load::Read::Backfill,
            Selection::Ids { ids, .. } => load::Read::Ids(ids.len()),
            Selection::Status(_) | Selection::Run(_) | Selection::Load(_) => load::Read::Other,
        };
        let load = load::load_for(read, &run, job.bulk_threshold());
        let changes: Vec<ChangeEvent> = page
            .records
            .iter()
            .map(|record| ChangeEvent {
                load: load.clone(),
                ..ChangeEvent::forced(record.clone(), &run, now_ms)
            })
            .collect();
        self.send(&changes).await?;
        for change in &changes {
            runs.line(
                run_job,
                RunLine::new(&change.record_id, LineOutcome::Queued),
            );
        }
        for id in &page.not_found {
            let line = RunLine::new(id, LineOutcome::Error).message(format!(
                "not found in {} or {}",
                job.gainsight.object, job.salesforce.object
            ));
            runs.line(run_job, line);
        }
        Ok((changes.len(), page))
    }

    async fn send(&self, changes: &[ChangeEvent]) -> Result<(), ResyncError> {
        let bodies: Vec<String> = changes
            .iter()
            .filter_map(|c| serde_json::to_string(c).ok())
            .collect();
        let results = self.ports.changes.send(&bodies).await;
        match results.into_iter().filter(Result::is_err).count() {
            0 => Ok(()),
            failed => Err(ResyncError::Queue(failed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::domain::{ChangeOrigin, LedgerKey, LedgerUpdate, System};
    use shared::fakes::{MemoryGainsight, MemoryQueue, MemorySalesforce, MemoryStore};
    use shared::ports::{LedgerWrite, RunStore};

    struct World {
        store: Arc<MemoryStore>,
        queue: Arc<MemoryQueue>,
        gainsight: Arc<MemoryGainsight>,
        salesforce: Arc<MemorySalesforce>,
        resync: Resync,
    }

    fn world() -> World {
        let store = Arc::new(MemoryStore::default());
        let queue = Arc::new(MemoryQueue::default());
        let gainsight = Arc::new(MemoryGainsight::default());
        let salesforce = Arc::new(MemorySalesforce::default());
        let ports = SourcePorts {
            changes: queue.clone(),
            gainsight: gainsight.clone(),
            jobs: Jobs::builtin(),
        };
        let resync = Resync::new(ports, store.clone(), salesforce.clone());
        World {
            store,
            queue,
            gainsight,
            salesforce,
            resync,
        }
    }

    async fn fail(store: &MemoryStore, key: LedgerKey) {
        let update = LedgerUpdate::Failed {
            message: "x".into(),
        };
        let write = LedgerWrite::new("company_account", key, update, "");
        store.record(&write, 1).await.unwrap();
    }

    fn request(json: serde_json::Value) -> ResyncRequest {
        serde_json::from_value(json).unwrap()
    }

    fn changes(queue: &MemoryQueue) -> Vec<ChangeEvent> {
        let bodies = queue.bodies();
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn requeues_error_records_where_they_live_as_forced_changes_in_a_run() {
        let w = world();
        fail(&w.store, LedgerKey::Gainsight("G1".into())).await;
        fail(
            &w.store,
            LedgerKey::SalesforceOnly("001000000000009AAA".into()),
        )
        .await;
        let company = json!({"Gsid": "G1", "Name": "A"});
        w.gainsight.records.lock().unwrap().insert(
            "Company".into(),
            vec![company.as_object().cloned().unwrap()],
        );
        let account = json!({"Id": "001000000000009AAA", "Name": "Born in SF"});
        *w.salesforce.query_rows.lock().unwrap() = vec![account.as_object().cloned().unwrap()];
        let out = w
            .resync
            .handle_at(
                request(json!({"job": "company_account", "status": "error"})),
                5,
            )
            .await
            .unwrap();
        assert_eq!((out.queued, out.continuation.is_none()), (2, true));
        let queued = changes(&w.queue);
        assert!(queued.iter().all(|c| c.origin == ChangeOrigin::Resync));
        assert_eq!(
            queued.iter().map(|c| c.source).collect::<Vec<_>>(),
            [System::Gainsight, System::Salesforce]
        );
        // The Salesforce-only record is read from Salesforce by its Id, in one query.
        let selects = w.salesforce.queries.lock().unwrap().clone();
        assert_eq!(selects.len(), 1);
        assert_eq!(
            selects[0].conditions,
            [("Id".to_string(), vec!["001000000000009AAA".to_string()])]
        );
        let run = w
            .store
            .run(&out.run)
            .await
            .unwrap()
            .expect("the run is stored");
        assert_eq!(
            (run.job.as_deref(), run.succeeded),
            (Some("company_account"), 2)
        );
    }

    /// A linked pair asked for by GSID or Salesforce Id is read from Gainsight by default, and
    /// from its Salesforce record with `from: salesforce` (how `diff --fix` repairs a field that
    /// flows from Salesforce).
    #[tokio::test]
    async fn a_linked_pair_is_read_from_the_system_asked_for() {
        let w = world();
        let (gsid, sfid) = ("G1", "001000000000001AAA");
        let link = LedgerUpdate::Imported {
            salesforce_id: sfid.into(),
            origin: "test".into(),
        };
        let key = LedgerKey::Gainsight(gsid.into());
        let write = LedgerWrite::new("company_account", key, link, "");
        w.store.record(&write, 1).await.unwrap();
        let company = json!({"Gsid": gsid, "Name": "A"});
        w.gainsight.records.lock().unwrap().insert(
            "Company".into(),
            vec![company.as_object().cloned().unwrap()],
        );
        let account = json!({"Id": sfid, "Name": "A", "Phone": "555"});
        *w.salesforce.query_rows.lock().unwrap() = vec![account.as_object().cloned().unwrap()];
        let ask = |from: Option<&str>| {
            let mut r = json!({"job": "company_account", "ids": [gsid]});
            if let Some(from) = from {
                r["from"] = json!(from);
            }
            request(r)
        };
        let out = w.resync.handle_at(ask(None), 5).await.unwrap();
        assert_eq!((out.queued, out.not_found.len()), (1, 0));
        let out = w
            .resync
            .handle_at(ask(Some("salesforce")), 6)
            .await
            .unwrap();
        assert_eq!(
            (out.queued, out.not_found.len()),
            (1, 0),
            "the GSID is found as its pair"
        );
        let sources: Vec<System> = changes(&w.queue).iter().map(|c| c.source).collect();
        assert_eq!(sources, [System::Gainsight, System::Salesforce]);
        let selects = w.salesforce.queries.lock().unwrap().clone();
        assert_eq!(
            selects[0].conditions,
            [("Id".to_string(), vec![sfid.to_string()])]
        );
    }

    #[tokio::test]
    async fn ids_nobody_has_are_reported_and_logged_as_errors() {
        let w = world();
        let out = w
            .resync
            .handle_at(
                request(json!({"job": "company_account", "ids": ["G404"]})),
                5,
            )
            .await
            .unwrap();
        assert_eq!(out.queued, 0);
        assert_eq!(out.not_found, ["G404"]);
        let run = w.store.run(&out.run).await.unwrap().unwrap();
        assert_eq!(run.status, shared::domain::RunStatus::Failed);
        assert!(run.log[0].message.as_deref().unwrap().contains("not found"));
    }

    #[tokio::test]
    async fn a_run_is_resynced_by_its_failed_records() {
        let w = world();
        let mut runs = Runs::new(RunFunction::Pusher, "writes batch", 7, "m");
        runs.line(
            Some("company_account"),
            RunLine::new("G1", LineOutcome::Error),
        );
        runs.line(
            Some("company_account"),
            RunLine::new("G2", LineOutcome::Synced),
        );
        let done = runs.finish(8);
        w.store.put_runs(&done).await.unwrap();
        let company = json!({"Gsid": "G1", "Name": "A"});
        w.gainsight.records.lock().unwrap().insert(
            "Company".into(),
            vec![company.as_object().cloned().unwrap()],
        );
        let run = done[0].id.to_string();
        let out = w
            .resync
            .handle_at(request(json!({"run": run})), 9)
            .await
            .unwrap();
        assert_eq!(out.queued, 1);
        let (_, query) = w.gainsight.queries.lock().unwrap()[0].clone();
        assert_eq!(
            query.conditions[0].values,
            vec![json!("G1")],
            "only the failed record"
        );
    }

    #[tokio::test]
    async fn a_large_status_selection_continues_where_it_stopped() {
        let w = world();
        for i in 0..PAGE + 1 {
            fail(&w.store, LedgerKey::Gainsight(format!("G{i:05}"))).await;
        }
        let first = w
            .resync
            .handle_at(
                request(json!({"job": "company_account", "status": "error"})),
                5,
            )
            .await
            .unwrap();
        let next = first.continuation.expect("a second page");
        let at = next.continuation.clone().unwrap();
        assert_eq!(at.after_key.as_deref(), Some("G01999"));
        let paused = w.store.run(&first.run).await.unwrap().unwrap();
        assert_eq!(paused.status, shared::domain::RunStatus::InProgress);
        let second = w.resync.handle_at(next, 6).await.unwrap();
        assert!(second.continuation.is_none());
        // One run for the whole resync, finished with the last page.
        assert_eq!(second.run, first.run);
        let done = w.store.run(&first.run).await.unwrap().unwrap();
        assert_eq!(
            done.status,
            shared::domain::RunStatus::Failed,
            "no record found in Gainsight"
        );
        assert_eq!(done.failed as usize, PAGE + 1);
        let asked = w.gainsight.queries.lock().unwrap();
        let last = &asked.last().unwrap().1.conditions[0].values;
        assert_eq!(
            last,
            &vec![json!("G02000")],
            "the second page reads only the rest"
        );
    }

    #[tokio::test]
    async fn refuses_unknown_jobs_runs_and_malformed_requests() {
        let w = world();
        let cases = [
            (json!({"job": "nope", "status": "error"}), "nope"),
            (json!({"job": "company_account"}), "say what to resync"),
            (json!({"run": "1-pusher-abc"}), "is not stored"),
        ];
        for (json, expected) in cases {
            let err = w
                .resync
                .handle_at(request(json.clone()), 1)
                .await
                .unwrap_err();
            assert!(err.to_string().contains(expected), "{json}: {err}");
        }
        assert!(w.queue.bodies().is_empty());
    }
}
