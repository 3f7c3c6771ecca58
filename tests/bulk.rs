//! The pusher sends a batch at or over its job's `bulk_threshold` through Bulk API 2.0: one
//! ingest job instead of sObject Collections, each record's outcome in the ledger as on the REST
//! path (a refused record marked error with Salesforce's message).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use shared::domain::{Jobs, LedgerKey, RecordKey, System, WriteCommand, WriteMode};
use shared::fakes::{sqs_event, MemoryGainsight, MemoryStore};
use shared::ports::{LedgerStore, RunStore};

/// The shipped jobs, company_account with a Bulk threshold of 1,000 (the pusher's batch size).
fn jobs() -> Result<Jobs> {
    let mut all = Vec::new();
    for job in Jobs::builtin().iter() {
        let text = match job.name.as_str() {
            "company_account" => format!("{}\nbulk_threshold: 1000\n", job.text),
            _ => job.text.clone(),
        };
        all.push(Jobs::parse(Path::new(&job.file), &text)?);
    }
    Ok(Jobs::new(all)?)
}

fn command(i: usize) -> WriteCommand {
    let gsid = format!("P{i:04}");
    let industry = if i == 7 {
        "Underwater Basket Weaving"
    } else {
        "Energy"
    };
    let fields =
        json!({"Gainsight_Company_Id__c": gsid, "Name": format!("Bulk {i}"), "Industry": industry});
    WriteCommand {
        job: "company_account".into(),
        target: System::Salesforce,
        object: "Account".into(),
        key: RecordKey::ExternalId {
            field: "Gainsight_Company_Id__c".into(),
            value: gsid.clone(),
        },
        mode: WriteMode::Upsert,
        fields: fields.as_object().cloned().unwrap_or_default(),
        ledger_key: LedgerKey::Gainsight(gsid),
        salesforce_id: None,
        field_states: Default::default(),
        writeback: None,
        source: System::Gainsight,
        conflicts: Default::default(),
        event_id: format!("e{i}"),
        source_changed_at_ms: 1,
        received_at_ms: 1,
        attachments: Vec::new(),
        skipped: Vec::new(),
        unchanged: Default::default(),
        load: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_goes_through_one_bulk_job() -> Result<()> {
    let emulator = devstack::salesforce::SalesforceEmulator::start(Default::default()).await?;
    let client = sync_tests::salesforce_client(&emulator);
    let store = Arc::new(MemoryStore::default());
    let gainsight = Arc::new(MemoryGainsight::default());
    let pusher = pusher::Pusher::new(
        (store.clone(), store.clone(), store.clone()),
        Arc::new(client),
        gainsight,
        jobs()?,
    );
    let messages = (0..1_000).map(|i| {
        (
            format!("m{i}"),
            serde_json::to_string(&command(i)).unwrap_or_default(),
        )
    });
    let event = sqs_event(
        include_str!("../functions/pusher/fixtures/sqs_event.json"),
        messages,
    );
    let (response, summary) = pusher.handle_at(event, shared::time::now_ms()).await;
    assert!(response.batch_item_failures.is_empty(), "{summary:?}");
    assert_eq!((summary.synced, summary.failed_records), (999, 1));
    let stats = emulator.stats();
    assert_eq!(stats.bulk_jobs, 1);
    assert_eq!(stats.upsert_calls, 0, "no sObject Collections call");
    assert_eq!(
        stats.api_calls - stats.bulk_state_polls,
        5,
        "create, upload, close, both result files"
    );
    let refused = store
        .ledger("company_account", &LedgerKey::Gainsight("P0007".into()))
        .await?
        .expect("ledger record");
    assert!(refused.error, "{refused:?}");
    let message = refused.last_error.unwrap_or_default();
    assert!(
        message.starts_with("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: "),
        "{message}"
    );
    let synced = store
        .ledger("company_account", &LedgerKey::Gainsight("P0008".into()))
        .await?
        .expect("ledger record");
    assert!(
        synced.synced && synced.salesforce_id.is_some(),
        "{synced:?}"
    );
    Ok(())
}

/// A backfill through the product: `resync all` of 2,500 Companies that were in Gainsight before
/// the sync. Every page is mapped as usual, the pusher stages the Account upserts under the
/// resync's run, and once the load stops growing one flush writes them through one Bulk API 2.0
/// job: 4 Salesforce calls for 2,500 records, plus the job's state polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backfill_goes_to_salesforce_as_one_bulk_job() -> Result<()> {
    const N: usize = 2_500;
    let stack = sync_tests::Stack::start(Default::default()).await?;
    let done =
        sync_tests::backfill::backfill_companies(&stack, N, Duration::from_secs(180)).await?;
    one_job_of_four_calls(&done);
    // The pushers' runs say where the writes went meanwhile: every record staged under the
    // resync's run (a redelivered message may stage one twice; it replaces itself).
    let marker = format!("staged for bulk load {}", done.run);
    let mut staged = std::collections::HashSet::new();
    for listed in stack
        .store
        .runs(done.started_ms, shared::time::now_ms())
        .await?
    {
        if let Some(full) = stack.store.run(&listed.id).await? {
            let lines = full.log.into_iter();
            staged.extend(
                lines
                    .filter(|l| l.message.as_deref() == Some(marker.as_str()))
                    .map(|l| l.record),
            );
        }
    }
    assert_eq!(
        staged.len(),
        N,
        "every record staged under the resync's run"
    );
    stack.stop().await;
    Ok(())
}

/// The same backfill with a Bulk API job that outlasts the pusher's wait (Salesforce busy: the
/// job stays in progress for several polls, the pusher waits 300 ms a call): the flush leaves its
/// slice staged and flushes it again, the second flush collects the job it submitted, and
/// Salesforce is given the records once: one job, four calls besides the state polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bulk_job_that_outlasts_the_pusher_is_collected_not_written_twice() -> Result<()> {
    const N: usize = 2_500;
    let stack = sync_tests::Stack::start(sync_tests::Options {
        bulk_wait: (Duration::from_millis(300), Duration::from_secs(1)),
        ..Default::default()
    })
    .await?;
    // Eight polls before it is processed: at most three fit in one wait.
    stack
        .salesforce
        .inject(devstack::salesforce::Fault::BulkSlow { polls: 6, times: 1 });
    let done =
        sync_tests::backfill::backfill_companies(&stack, N, Duration::from_secs(180)).await?;
    one_job_of_four_calls(&done);
    // Three polls at most per flush: the slice was flushed three times or more.
    assert!(done.state_polls >= 8, "{done:?}");
    stack.stop().await;
    Ok(())
}

/// The backfill went to Salesforce as one ingest job: create, upload, close and the successful
/// results, besides the state polls; no Collections call.
fn one_job_of_four_calls(done: &sync_tests::backfill::Backfill) {
    assert_eq!(done.bulk_jobs, 1, "one ingest job: {done:?}");
    assert_eq!(done.collection_calls, 0, "no Collections call: {done:?}");
    assert_eq!(done.salesforce_calls, 4, "four calls: {done:?}");
}
