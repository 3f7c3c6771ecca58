//! One poll window of new Timeline activities through the real poller, mapper and pusher and the
//! real API clients against the emulators (queues and state in memory, batches as the template
//! sizes them): the exact API calls each system is sent, for the call-count test and bench.

use std::sync::Arc;

use anyhow::Result;
use devstack::gainsight::GainsightEmulator;
use devstack::salesforce::SalesforceEmulator;
use serde_json::{json, Value};
use shared::adapters::gainsight::GainsightClient;
use shared::config::GainsightSettings;
use shared::domain::Jobs;
use shared::fakes::{sqs_event, MemoryQueue, MemoryStore};
use shared::ports::{GainsightApi, SalesforceApi, SourcePorts};
use shared::secret::Secret;

use crate::GAINSIGHT_ACCESS_KEY;

/// The template's batch sizes: the mapper takes 100 changes, the pusher 1,000 commands.
const MAPPER_BATCH: usize = 100;
const PUSHER_BATCH: usize = 1_000;

/// API calls one window cost, by system and kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WindowCalls {
    /// Gainsight reads: the activity query and the participants' resolution.
    pub gainsight_reads: u64,
    /// Gainsight writes: the Task Ids written back onto the activities (50 records a call).
    pub gainsight_writebacks: u64,
    /// Salesforce writes (create, update, upsert collections).
    pub salesforce_writes: u64,
    /// Salesforce reads and describes made while mapping and pushing.
    pub salesforce_reads: u64,
    pub tasks: usize,
}

/// `n` new activities (each with a company and an attendee known to Salesforce) synced in one
/// scheduled poll of `activity_task`.
pub async fn sync_window(n: usize) -> Result<WindowCalls> {
    let sf = SalesforceEmulator::start(Default::default()).await?;
    let gs = GainsightEmulator::start(GAINSIGHT_ACCESS_KEY).await?;
    let salesforce: Arc<dyn SalesforceApi> = Arc::new(crate::salesforce_client(&sf));
    let gainsight_client = Arc::new(GainsightClient::new(
        GainsightSettings { base_url: gs.url() },
        Secret::new(GAINSIGHT_ACCESS_KEY.to_string()),
    ));
    let gainsight: Arc<dyn GainsightApi> = gainsight_client.clone();
    seed(gainsight.as_ref(), n).await?;
    let (jobs, store) = (Jobs::builtin(), Arc::new(MemoryStore::default()));
    let schemas =
        shared::resolve::load_schemas(&jobs, salesforce.as_ref(), gainsight.as_ref()).await?;
    let (gs0, sf0) = (gs.stats(), sf.stats());

    let changes = Arc::new(MemoryQueue::default());
    let ports = SourcePorts {
        changes: changes.clone(),
        gainsight: gainsight.clone(),
        jobs: jobs.clone(),
    };
    let poller = poller::Poller::new(ports, store.clone());
    let request = poller::PollRequest {
        job: "activity_task".into(),
        since_ms: Some(0),
        only: None,
    };
    let polled = poller.handle(request).await?;
    anyhow::ensure!(polled.queued == n, "queued {}", polled.queued);
    let gainsight_reads = gs.stats().api_calls - gs0.api_calls;

    let ports = (salesforce, gainsight);
    map_and_push(ports, &jobs, store, schemas, changes.bodies()).await?;
    let (gs1, sf1) = (gs.stats(), sf.stats());
    let sf_writes =
        |s: &devstack::salesforce::Stats| s.upsert_calls + s.create_calls + s.update_calls;
    Ok(WindowCalls {
        gainsight_reads,
        gainsight_writebacks: gs1.api_calls - gs0.api_calls - gainsight_reads,
        salesforce_writes: sf_writes(&sf1) - sf_writes(&sf0),
        salesforce_reads: (sf1.api_calls - sf0.api_calls) - (sf_writes(&sf1) - sf_writes(&sf0)),
        tasks: sf.records("Task").len(),
    })
}

/// The changes through the mapper in batches of 100, then the commands through the pusher in
/// batches of 1,000, as their event sources deliver them.
async fn map_and_push(
    (salesforce, gainsight): (Arc<dyn SalesforceApi>, Arc<dyn GainsightApi>),
    jobs: &Jobs,
    store: Arc<MemoryStore>,
    schemas: shared::domain::Schemas,
    changes: Vec<String>,
) -> Result<()> {
    let writes = Arc::new(MemoryQueue::default());
    let mapper = mapper::MapperFn::new(
        store.clone(),
        store.clone(),
        writes.clone(),
        salesforce.clone(),
        gainsight.clone(),
        jobs.clone(),
        schemas,
    );
    for batch in changes.chunks(MAPPER_BATCH) {
        let messages = batch.iter().enumerate().map(|(i, b)| (i, b.clone()));
        let event = sqs_event(MAPPER_FIXTURE, messages);
        let (response, _) = mapper.handle_at(event, shared::time::now_ms()).await;
        anyhow::ensure!(response.batch_item_failures.is_empty(), "mapper failed");
    }
    let pusher = pusher::Pusher::new(
        (store.clone(), store.clone(), store),
        salesforce,
        gainsight,
        jobs.clone(),
    );
    for batch in writes.bodies().chunks(PUSHER_BATCH) {
        let messages = batch.iter().enumerate().map(|(i, b)| (i, b.clone()));
        let event = sqs_event(PUSHER_FIXTURE, messages);
        let (response, summary) = pusher.handle_at(event, shared::time::now_ms()).await;
        anyhow::ensure!(
            response.batch_item_failures.is_empty(),
            "pusher failed: {summary:?}"
        );
    }
    Ok(())
}

const MAPPER_FIXTURE: &str = include_str!("../../functions/mapper/fixtures/sqs_event.json");
const PUSHER_FIXTURE: &str = include_str!("../../functions/pusher/fixtures/sqs_event.json");

/// Companies and people linked to Salesforce, and `n` calls logged on them: ten activities per
/// company, each with its own attendee.
async fn seed(gainsight: &dyn GainsightApi, n: usize) -> Result<()> {
    let companies: Vec<Value> = (0..n.div_ceil(10))
        .map(|i| json!({"Name": format!("Co {i}"), "SfdcAccountId": format!("001{i:015}")}))
        .collect();
    let company_ids = insert(gainsight, "Company", companies).await?;
    let people: Vec<Value> = (0..n)
        .map(|i| json!({"LastName": format!("P{i}"), "Email": format!("p{i}@example.com"), "SfdcContactId": format!("003{i:015}")}))
        .collect();
    insert(gainsight, "Person", people).await?;
    let activities: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "Subject": format!("Call {i}"), "TypeName": "Call", "ActivityDate": 1_767_261_600_000_i64,
                "GsCompanyId": company_ids[i / 10],
                "ExternalAttendees": [{"Email": format!("p{i}@example.com")}],
            })
        })
        .collect();
    insert(gainsight, "activity_timeline", activities).await?;
    Ok(())
}

/// Inserts in calls of 50 (Gainsight's limit); the new GSIDs in order.
async fn insert(
    gainsight: &dyn GainsightApi,
    object: &str,
    records: Vec<Value>,
) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(records.len());
    for chunk in records.chunks(50) {
        let rows: Vec<shared::domain::Fields> = chunk
            .iter()
            .filter_map(|r| r.as_object().cloned())
            .collect();
        for result in gainsight.insert(object, &rows).await? {
            ids.push(
                result
                    .id
                    .ok_or_else(|| anyhow::anyhow!("{object} not inserted: {:?}", result.errors))?,
            );
        }
    }
    Ok(ids)
}
