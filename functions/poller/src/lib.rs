//! Poller function: on an EventBridge schedule, reads the records of a job changed since the job's
//! (timestamp, id) cursor in each system (Gainsight always; Salesforce, on `SystemModstamp`, when
//! fields flow from it), with an overlapping window, queues them as changes (dedup by record
//! version), and advances each cursor only after what it covers is queued.

mod read;
mod sweep;

pub use sweep::SweepReport;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shared::adapters::AwsClients;
use shared::domain::load;
use shared::domain::timeline::Participants;
use shared::domain::{Fields, Job, Jobs, System};
use shared::domain::{RunFunction, Runs};
use shared::enqueue::{enqueue, record_run, Delivery, EnqueueError};
use shared::lambda::{store_runs, Deadline};
use shared::participants::{resolve, ResolveError};
use shared::ports::{
    Cursor, CursorStore, DedupStore, LedgerStore, RunStore, SalesforceApi, SecretsError,
    SourcePorts, WaitingStore,
};

use read::before;

/// Field Gainsight stamps on every modification (epoch ms in the data API).
pub use shared::domain::change::GAINSIGHT_MODIFIED as MODIFIED_FIELD;
/// Re-read this much before the cursor by default: late commits with older timestamps are not
/// missed. `POLL_OVERLAP_SECONDS` (the template's `PollOverlapSeconds`) changes it.
pub const OVERLAP_MS: i64 = 5 * 60 * 1000;

/// The window overlap from `POLL_OVERLAP_SECONDS`, or the default.
pub fn overlap_from_env() -> Result<i64, shared::config::ConfigError> {
    let name = "POLL_OVERLAP_SECONDS";
    match shared::config::optional(name) {
        None => Ok(OVERLAP_MS),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map(|s| i64::from(s) * 1000)
            .map_err(|_| shared::config::ConfigError::Invalid {
                name,
                message: format!("{v:?} is not a whole number of seconds"),
            }),
    }
}
/// Table, queues, the Gainsight tenant and the Salesforce org.
pub type Config = shared::config::ReadConfig;

/// The constant input each schedule rule passes (see `infra/template.yaml`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollRequest {
    pub job: String,
    /// Backfill: start from this instant (epoch ms) instead of the cursor.
    #[serde(default)]
    pub since_ms: Option<i64>,
    /// Read only this system (a Salesforce Change Data Capture overflow); both when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<System>,
}

/// What one poll did.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PollReport {
    pub job: String,
    /// Changes queued from both systems (record versions not queued before).
    pub queued: usize,
    /// Each system read.
    pub streams: Vec<StreamReport>,
    /// What became of the job's changes waiting for their parent.
    #[serde(default)]
    pub waiting: SweepReport,
    /// The job is stopped: nothing was read, and the cursor stays where it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// What one poll read from one system.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StreamReport {
    pub source: System,
    pub queued: usize,
    /// Start of the window read (epoch ms).
    pub from_ms: i64,
    /// The cursor after the poll.
    pub cursor_ms: Option<i64>,
    /// The window was not read to its end before the invocation's deadline: the next poll goes
    /// on from the cursor.
    #[serde(default)]
    pub cut_short: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    UnknownJob(#[from] shared::domain::UnknownJob),
    #[error(transparent)]
    Api(#[from] shared::ports::ApiError),
    #[error(transparent)]
    Store(#[from] shared::ports::StoreError),
    #[error("{0}; cursor not advanced")]
    Queue(#[from] EnqueueError),
    #[error("{0}; cursor not advanced")]
    Participants(#[from] ResolveError),
}

pub struct Poller {
    ports: SourcePorts,
    dedup: Arc<dyn DedupStore>,
    cursors: Arc<dyn CursorStore>,
    runs: Arc<dyn RunStore>,
    /// Where a Timeline window's participants not linked in Gainsight are looked up.
    ledger: Arc<dyn LedgerStore>,
    /// Salesforce, for jobs whose fields flow from it; without it only Gainsight is read.
    salesforce: Option<Arc<dyn SalesforceApi>>,
    /// The changes waiting for their parent, swept on each scheduled poll of their job.
    waiting: Option<Arc<dyn WaitingStore>>,
    /// Which jobs are stopped; without it every job runs.
    job_states: Option<shared::ports::JobStateCache>,
    /// Records read per query.
    page: usize,
    /// How far before the cursor a scheduled window starts (ms).
    overlap_ms: i64,
}

/// The time a poll keeps before its invocation's deadline to store its run: no page is read
/// later than this before it.
pub const DEADLINE_MARGIN_MS: i64 = 20_000;

/// The time of a poll and its invocation's deadline.
#[derive(Clone, Copy, Debug)]
struct Clock {
    now_ms: i64,
    deadline: Deadline,
}

impl Clock {
    fn out_of_time(&self) -> bool {
        self.deadline.is_near(DEADLINE_MARGIN_MS)
    }
}

/// Records a poll reads per query (Gainsight answers at most 5,000 a call).
pub const PAGE: usize = 2_000;

impl Poller {
    /// A poller over `ports`, keeping its dedup claims, cursors and runs in `store`.
    pub fn new<S: DedupStore + CursorStore + RunStore + LedgerStore + 'static>(
        ports: SourcePorts,
        store: Arc<S>,
    ) -> Self {
        Self {
            ports,
            dedup: store.clone(),
            cursors: store.clone(),
            ledger: store.clone(),
            salesforce: None,
            waiting: None,
            job_states: None,
            runs: store,
            page: PAGE,
            overlap_ms: OVERLAP_MS,
        }
    }

    /// Reads `page` records per query instead of `PAGE` (tests use small pages to cross page
    /// boundaries).
    pub fn with_page_size(mut self, page: usize) -> Self {
        self.page = page.max(1);
        self
    }

    /// Starts each scheduled window `overlap_ms` before the cursor.
    pub fn with_overlap(mut self, overlap_ms: i64) -> Self {
        self.overlap_ms = overlap_ms.max(0);
        self
    }

    /// Sweeps the job's changes waiting in `store` on each scheduled poll.
    pub fn with_waiting(mut self, store: Arc<dyn WaitingStore>) -> Self {
        self.waiting = Some(store);
        self
    }

    /// Reads Salesforce too, for the jobs whose fields flow from it.
    pub fn with_salesforce(mut self, salesforce: Arc<dyn SalesforceApi>) -> Self {
        self.salesforce = Some(salesforce);
        self
    }

    pub async fn from_aws(
        config: &Config,
        clients: &AwsClients,
        jobs: Jobs,
    ) -> Result<Self, SecretsError> {
        let aws = &config.source.aws;
        let store = Arc::new(clients.state_store(aws));
        let salesforce = Arc::new(clients.salesforce(aws, &config.salesforce).await?);
        let ports = clients.source_ports(&config.source, jobs).await?;
        Ok(Self::new(ports, store.clone())
            .with_salesforce(salesforce)
            .with_waiting(store.clone())
            .with_job_states(shared::ports::JobStateCache::new(store)))
    }

    pub async fn handle(&self, request: PollRequest) -> Result<PollReport, PollError> {
        self.handle_at(request, shared::time::now_ms()).await
    }

    /// Reads the job's window as of `now_ms`, with no deadline.
    pub async fn handle_at(
        &self,
        request: PollRequest,
        now_ms: i64,
    ) -> Result<PollReport, PollError> {
        self.handle_at_by(request, now_ms, Deadline::NONE).await
    }

    /// Reads the job's window as of `now_ms` in an invocation that must answer by `deadline`:
    /// no page is read within `DEADLINE_MARGIN_MS` of it, and the next poll goes on from the
    /// cursor.
    pub async fn handle_at_by(
        &self,
        request: PollRequest,
        now_ms: i64,
        deadline: Deadline,
    ) -> Result<PollReport, PollError> {
        self.handle_until(request, Clock { now_ms, deadline }).await
    }

    /// Reads the job's window, queues what is new, then moves the cursor.
    async fn handle_until(
        &self,
        request: PollRequest,
        clock: Clock,
    ) -> Result<PollReport, PollError> {
        let now_ms = clock.now_ms;
        let job = self.ports.jobs.named(&request.job)?;
        let event = match request.since_ms {
            Some(_) => "backfill",
            None => "schedule",
        };
        let mut runs = Runs::new(RunFunction::Poller, event, now_ms, &job.name);
        let run_job = Some(job.name.as_str());
        if let Some(stopped) = self.stopped(job, request.since_ms, now_ms, &mut runs).await {
            store_runs(self.runs.as_ref(), runs).await;
            return Ok(stopped);
        }
        runs.objects(run_job, &job.gainsight.object, Some(&job.salesforce.object));
        let polled = self
            .poll_both(job, (request.since_ms, request.only), clock, &mut runs)
            .await;
        if let Err(e) = &polled {
            runs.fail(run_job, e.to_string());
        }
        let waiting = match request.since_ms {
            None if !clock.out_of_time() => self.sweep(job, now_ms, &mut runs).await,
            _ => SweepReport::default(),
        };
        store_runs(self.runs.as_ref(), runs).await;
        let streams = polled?;
        Ok(PollReport {
            job: job.name.clone(),
            queued: streams.iter().map(|s| s.queued).sum(),
            streams,
            waiting,
            stopped: None,
        })
    }

    /// The report of a poll of a stopped job, which reads nothing: the cursor stays, so the
    /// first scheduled poll after the job starts again reads what changed meanwhile. A backfill
    /// asked for while it is stopped is not made later by itself: its run says so.
    async fn stopped(
        &self,
        job: &Job,
        since_ms: Option<i64>,
        now_ms: i64,
        runs: &mut Runs,
    ) -> Option<PollReport> {
        let states = self.job_states.as_ref()?.stopped(now_ms).await;
        let status = states.get(&job.name)?;
        let line = status.stopped_line(&job.name);
        tracing::info!(job = %job.name, "job stopped; nothing polled: {line}");
        if let Some(since) = since_ms {
            runs.fail(
                Some(&job.name),
                format!(
                    "backfill from {} not read: {line}; once it runs, `syncctl poll --job {} --since {}`",
                    shared::time::rfc3339(since),
                    job.name,
                    shared::time::rfc3339(since)
                ),
            );
        }
        Some(PollReport {
            job: job.name.clone(),
            queued: 0,
            streams: Vec::new(),
            waiting: SweepReport::default(),
            stopped: Some(line),
        })
    }

    /// Which jobs are stopped is read from `states`.
    pub fn with_job_states(mut self, states: shared::ports::JobStateCache) -> Self {
        self.job_states = Some(states);
        self
    }

    /// The scheduled sweep of the job's waiting changes; a failure is logged, and the next
    /// poll sweeps again.
    async fn sweep(&self, job: &Job, now_ms: i64, runs: &mut Runs) -> SweepReport {
        let Some(waiting) = &self.waiting else {
            return SweepReport::default();
        };
        let ports = sweep::SweepPorts {
            waiting: waiting.as_ref(),
            ledger: self.ledger.as_ref(),
            changes: self.ports.changes.as_ref(),
        };
        match sweep::sweep_job(ports, job, now_ms, runs).await {
            Ok(report) => report,
            Err(e) => {
                tracing::warn!(job = %job.name, error = %e, "waiting changes not swept; the next poll sweeps again");
                SweepReport::default()
            }
        }
    }

    /// Gainsight, then Salesforce when the job takes changes from it (or `only` one of them).
    async fn poll_both(
        &self,
        job: &Job,
        (since_ms, only): (Option<i64>, Option<System>),
        clock: Clock,
        runs: &mut Runs,
    ) -> Result<Vec<StreamReport>, PollError> {
        let wanted = |system| only.is_none_or(|o| o == system);
        let mut streams = Vec::new();
        if wanted(System::Gainsight) {
            streams.push(
                self.poll(job, System::Gainsight, since_ms, clock, runs)
                    .await?,
            );
        }
        if wanted(System::Salesforce) && self.salesforce.is_some() && read::polls_salesforce(job) {
            streams.push(
                self.poll(job, System::Salesforce, since_ms, clock, runs)
                    .await?,
            );
        }
        Ok(streams)
    }

    /// Reads the window a page at a time in (modified, id) order, each page after the last record
    /// of the one before (so a record edited meanwhile moves ahead and is read later, never
    /// skipped), queues what is new and only then moves the cursor past it.
    async fn poll(
        &self,
        job: &Job,
        source: System,
        since_ms: Option<i64>,
        clock: Clock,
        runs: &mut Runs,
    ) -> Result<StreamReport, PollError> {
        let now_ms = clock.now_ms;
        let stream = source.as_str();
        let cursor = self.cursors.cursor(&job.name, stream).await?;
        let from = match (since_ms, &cursor) {
            (Some(since), _) => since,
            (None, Some(c)) => c.timestamp_ms - self.overlap_ms,
            (None, None) => now_ms - self.overlap_ms,
        };
        // Strictly after (from - 1 ms, any id): every record modified at `from` or later.
        let mut after = Cursor {
            timestamp_ms: from - 1,
            last_id: String::new(),
        };
        let (mut queued, mut newest) = (0, cursor);
        let mut cut_short = false;
        loop {
            let records = self.read_page(job, source, &after).await?;
            let read = records.len();
            let participants = match source {
                System::Gainsight => self.participants(job, &records).await?,
                System::Salesforce => vec![None; read],
            };
            let (mut deliveries, last) = read::versions(job, source, records, participants, now_ms);
            if since_ms.is_some() {
                // A backfill: its changes are one bulk load, named by the poll's run.
                let run = runs.id_for(Some(&job.name)).to_string();
                let load = load::load_for(load::Read::Backfill, &run, job.bulk_threshold());
                for change in deliveries.iter_mut().flat_map(|d| d.changes.iter_mut()) {
                    change.load = load.clone();
                }
            }
            queued += self.queue(job, &deliveries, now_ms, runs).await?;
            let Some(last) = last else { break };
            if newest.as_ref().is_none_or(|n| before(n, &last)) {
                self.cursors.put_cursor(&job.name, stream, &last).await?;
                newest = Some(last.clone());
            }
            if read < self.page || !before(&after, &last) {
                break;
            }
            if clock.out_of_time() {
                // The cursor is past what was queued: the next poll reads on from there.
                tracing::warn!(job = %job.name, source = stream, queued, "poll stopped near the invocation's deadline; the next poll goes on from the cursor");
                cut_short = true;
                break;
            }
            after = last;
        }
        tracing::info!(job = %job.name, source = stream, queued, from_ms = from, "poll done");
        Ok(StreamReport {
            source,
            queued,
            from_ms: from,
            cursor_ms: newest.map(|c| c.timestamp_ms),
            cut_short,
        })
    }

    /// The next page of the job's records in `source` after `after`.
    async fn read_page(
        &self,
        job: &Job,
        source: System,
        after: &Cursor,
    ) -> Result<Vec<Fields>, PollError> {
        Ok(match (source, &self.salesforce) {
            (System::Salesforce, Some(salesforce)) => {
                let select = read::salesforce_page(job, after, self.page);
                salesforce.select(&select).await?
            }
            (System::Salesforce, None) => Vec::new(),
            (System::Gainsight, _) => {
                let query = read::gainsight_page(job, after, self.page);
                self.ports
                    .gainsight
                    .query(&job.gainsight.object, &query)
                    .await?
            }
        })
    }

    /// A Timeline page's participants, resolved for the whole page at once; none for other jobs.
    async fn participants(
        &self,
        job: &Job,
        records: &[Fields],
    ) -> Result<Vec<Option<Participants>>, PollError> {
        if job.timeline.is_none() || records.is_empty() {
            return Ok(vec![None; records.len()]);
        }
        let gainsight = self.ports.gainsight.as_ref();
        let resolved = resolve(records, &self.ports.jobs, gainsight, self.ledger.as_ref()).await?;
        Ok(resolved.into_iter().map(Some).collect())
    }

    /// Queues one page's record versions not queued before; logs them in the run.
    async fn queue(
        &self,
        job: &Job,
        deliveries: &[Delivery],
        now_ms: i64,
        runs: &mut Runs,
    ) -> Result<usize, PollError> {
        let dedup = self.dedup.as_ref();
        let result = enqueue(dedup, self.ports.changes.as_ref(), deliveries, now_ms).await;
        // A failure is the run's error, recorded by the caller.
        if result.is_ok() {
            record_run(runs, Some(&job.name), deliveries, &result);
        }
        Ok(result?.queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn a_page_starts_strictly_after_the_last_record_of_the_one_before() {
        let jobs = Jobs::builtin();
        let job = jobs.named("company_account").unwrap();
        let after = Cursor {
            timestamp_ms: 7,
            last_id: "G2".into(),
        };
        let q = read::gainsight_page(job, &after, 50);
        assert!(q.conditions.is_empty());
        let ops: Vec<Vec<(&str, &str, Value)>> = q
            .any_of
            .iter()
            .map(|g| {
                g.iter()
                    .map(|c| (c.field.as_str(), c.operator.as_str(), c.values[0].clone()))
                    .collect()
            })
            .collect();
        assert_eq!(
            ops,
            vec![
                vec![("ModifiedDate", "GT", json!(7))],
                vec![
                    ("ModifiedDate", "EQ", json!(7)),
                    ("Gsid", "GT", json!("G2"))
                ],
            ]
        );
        assert_eq!(q.limit, 50);
        assert_eq!(q.order_by[0].0, "ModifiedDate");
        assert_eq!(q.order_by[1].0, "Gsid");
    }
    use shared::fakes::{MemoryGainsight, MemoryQueue, MemoryStore};
    use std::sync::Arc;

    #[tokio::test]
    async fn queues_changed_records_once_and_advances_the_cursor() {
        let store = Arc::new(MemoryStore::default());
        let queue = Arc::new(MemoryQueue::default());
        let gs = Arc::new(MemoryGainsight::default());
        gs.records.lock().unwrap().insert(
            "Company".into(),
            vec![
                json!({"Gsid": "G1", "Name": "A", "ModifiedDate": 1_000})
                    .as_object()
                    .cloned()
                    .unwrap(),
                json!({"Gsid": "G2", "Name": "B", "ModifiedDate": 2_000})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ],
        );
        let poller = Poller::new(
            SourcePorts {
                changes: queue.clone(),
                gainsight: gs.clone(),
                jobs: Jobs::builtin(),
            },
            store.clone(),
        );
        let request = PollRequest {
            job: "company_account".into(),
            since_ms: None,
            only: None,
        };
        let out = poller.handle_at(request.clone(), 10_000_000).await.unwrap();
        assert_eq!(out.queued, 2);
        assert_eq!(
            store.cursors.lock().unwrap().values().next().unwrap(),
            &Cursor {
                timestamp_ms: 2_000,
                last_id: "G2".into()
            }
        );
        // The overlapping window re-reads both records; neither is queued again.
        let out = poller.handle_at(request, 10_000_001).await.unwrap();
        assert_eq!(out.queued, 0);
        assert_eq!(queue.bodies().len(), 2);
        let (_, q) = gs.queries.lock().unwrap()[1].clone();
        assert_eq!(
            q.any_of[0][0].values[0],
            json!(2_000 - OVERLAP_MS - 1),
            "second window starts before the cursor: modified > start - 1 ms"
        );
    }

    /// Each scheduled poll sweeps its job's waiting changes: one parked a minute ago waits, one
    /// parked six minutes ago is queued again and taken out, one that waited a day becomes the
    /// record's error, naming what it waited for.
    #[tokio::test]
    async fn a_poll_rechecks_waiting_changes_and_ends_the_waits_too_long() {
        use shared::domain::waiting::{ParentRef, WaitingChange};
        use shared::domain::{ChangeEvent, LedgerKey, Operation, SourceRecord};
        use shared::ports::WaitingStore;
        let store = Arc::new(MemoryStore::default());
        let queue = Arc::new(MemoryQueue::default());
        let poller = Poller::new(
            SourcePorts {
                changes: queue.clone(),
                gainsight: Arc::new(MemoryGainsight::default()),
                jobs: Jobs::builtin(),
            },
            store.clone(),
        )
        .with_waiting(store.clone());
        let now = 100 * 3_600_000;
        let case = |id: &str, filed_at: i64| {
            let record = SourceRecord {
                source: System::Gainsight,
                object: "Case".into(),
                id: id.into(),
                fields: Fields::new(),
            };
            let created = Operation::Created;
            let change = ChangeEvent::pushed(record, format!("ev-{id}"), created, 1, 1);
            let parent = ParentRef {
                system: System::Salesforce,
                object: "Account".into(),
                matches: vec![("Gainsight_Company_Id__c".into(), format!("C-{id}"))],
            };
            let key = LedgerKey::Gainsight(id.into());
            WaitingChange::new("case_case", key, parent, &change, "no Account", filed_at)
        };
        let parked = [
            case("K1", now - 60_000),
            case("K2", now - 6 * 60_000),
            case("K3", now - 24 * 3_600_000),
        ];
        store.wait(&parked).await.unwrap();
        let request = PollRequest {
            job: "case_case".into(),
            since_ms: None,
            only: None,
        };
        let out = poller.handle_at(request, now).await.unwrap();
        assert_eq!(
            out.waiting,
            SweepReport {
                rechecked: 1,
                expired: 1,
                waiting: 1
            }
        );
        let queued: Vec<ChangeEvent> = (queue.bodies().iter())
            .map(|b| serde_json::from_str(b).unwrap())
            .collect();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].record_id, "K2");
        let left = store.waiting_in("case_case").await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].change.record_id, "K1");
        let k3 = store.ledger_of("case_case", "K3").unwrap();
        assert!(k3.error);
        let said = k3.last_error.unwrap();
        assert!(
            said.starts_with("gave up after waiting 24 h for the Salesforce Account where Gainsight_Company_Id__c = C-K3")
                && said.contains("syncctl resync --job case_case --ids K3"),
            "{said}"
        );
    }

    /// A poll near its invocation's deadline stops after the page it read, the cursor past it,
    /// and says so; the next poll reads on from there.
    #[tokio::test]
    async fn a_poll_stops_before_the_deadline_and_the_next_goes_on() {
        let store = Arc::new(MemoryStore::default());
        let queue = Arc::new(MemoryQueue::default());
        let gs = Arc::new(MemoryGainsight::default());
        let companies = (1..=3)
            .map(|i| json!({"Gsid": format!("G{i}"), "Name": "A", "ModifiedDate": i * 1_000}))
            .map(|v| v.as_object().cloned().unwrap())
            .collect();
        gs.records
            .lock()
            .unwrap()
            .insert("Company".into(), companies);
        let ports = SourcePorts {
            changes: queue.clone(),
            gainsight: gs.clone(),
            jobs: Jobs::builtin(),
        };
        let poller = Poller::new(ports, store.clone()).with_page_size(1);
        let request = PollRequest {
            job: "company_account".into(),
            since_ms: Some(0),
            only: None,
        };
        let soon = Deadline::in_ms(DEADLINE_MARGIN_MS - 1_000);
        let out = poller
            .handle_at_by(request.clone(), 10_000, soon)
            .await
            .unwrap();
        // The fake answers every record to every query: one full page, then the stop.
        assert_eq!((out.queued, out.streams[0].cut_short), (3, true));
        assert_eq!(gs.queries.lock().unwrap().len(), 1, "no second page read");
        assert_eq!(
            out.streams[0].cursor_ms,
            Some(3_000),
            "the cursor past what was queued"
        );
        let out = poller.handle_at(request, 10_001).await.unwrap();
        assert!(!out.streams[0].cut_short);
        assert_eq!(queue.bodies().len(), 3, "nothing queued twice");
    }

    #[tokio::test]
    async fn the_overlap_is_configurable() {
        let store = Arc::new(MemoryStore::default());
        let gs = Arc::new(MemoryGainsight::default());
        let ports = SourcePorts {
            changes: Arc::new(MemoryQueue::default()),
            gainsight: gs.clone(),
            jobs: Jobs::builtin(),
        };
        let poller = Poller::new(ports, store).with_overlap(60_000);
        let request = PollRequest {
            job: "company_account".into(),
            since_ms: None,
            only: None,
        };
        let report = poller.handle_at(request, 1_000_000).await.unwrap();
        assert_eq!(report.streams[0].from_ms, 1_000_000 - 60_000);
        let (_, q) = gs.queries.lock().unwrap()[0].clone();
        assert_eq!(q.any_of[0][0].values[0], json!(1_000_000 - 60_000 - 1));
    }

    #[tokio::test]
    async fn the_cursor_stays_when_queueing_fails() {
        let store = Arc::new(MemoryStore::default());
        let queue = Arc::new(MemoryQueue::default());
        *queue.fail_containing.lock().unwrap() = Some("G1".into());
        let gs = Arc::new(MemoryGainsight::default());
        gs.records.lock().unwrap().insert(
            "Company".into(),
            vec![json!({"Gsid": "G1", "ModifiedDate": 5})
                .as_object()
                .cloned()
                .unwrap()],
        );
        let poller = Poller::new(
            SourcePorts {
                changes: queue,
                gainsight: gs,
                jobs: Jobs::builtin(),
            },
            store.clone(),
        );
        let err = poller
            .handle_at(
                PollRequest {
                    job: "company_account".into(),
                    since_ms: Some(0),
                    only: None,
                },
                100,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                PollError::Queue(EnqueueError::Queue {
                    failed: 1,
                    total: 1,
                    ..
                })
            ),
            "{err}"
        );
        assert!(store.cursors.lock().unwrap().is_empty());
        assert!(poller
            .handle_at(
                PollRequest {
                    job: "nope".into(),
                    since_ms: None,
                    only: None,
                },
                100
            )
            .await
            .is_err());
    }
}
