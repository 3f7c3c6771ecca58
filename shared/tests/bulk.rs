//! Bulk API 2.0 ingest through the Salesforce client against the emulator: a 20,000-record load
//! in one job, four calls plus the state polls, each record's outcome matched back by external ID;
//! an update by Id the same way; a job still running when the client can wait no longer,
//! collected by the next writer of the same records (jobs remembered in the state table on
//! moto); and Bulk API 2.0 query: a read in sets by locator.

use std::sync::Arc;

use anyhow::Result;
use devstack::moto::LocalAws;
use devstack::salesforce::{self as sf, SalesforceEmulator};
use serde_json::json;
use shared::adapters::dynamo::DynamoStateStore;
use shared::adapters::salesforce::SalesforceClient;
use shared::config::SalesforceSettings;
use shared::domain::Fields;
use shared::secret::Secret;

mod common;

fn client(emu: &SalesforceEmulator) -> SalesforceClient {
    let settings = SalesforceSettings {
        login_url: emu.url(),
        client_id: emu.client_id(),
        api_version: "62.0".into(),
        auth: Default::default(),
    };
    SalesforceClient::new(settings, Secret::new(emu.client_secret()))
}

fn accounts(n: usize, bad_every: usize) -> Vec<Fields> {
    (0..n)
        .map(|i| {
            let industry = if bad_every > 0 && i % bad_every == 0 { "Underwater Basket Weaving" } else { "Energy" };
            json!({"Gainsight_Company_Id__c": format!("B{i:05}"), "Name": format!("Bulk {i}"), "AnnualRevenue": i, "Industry": industry})
        })
        .filter_map(|v| v.as_object().cloned())
        .collect()
}

#[tokio::test]
async fn twenty_thousand_records_in_one_job_and_four_calls_plus_polls() -> Result<()> {
    let emu = SalesforceEmulator::start(sf::Options::default()).await?;
    let client = client(&emu);
    let records = accounts(20_000, 0);
    let results = client
        .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &records)
        .await?;
    assert_eq!(results.len(), 20_000);
    assert!(results
        .iter()
        .all(|r| r.success && r.created && r.id.is_some()));
    assert_eq!(emu.records("Account").len(), 20_000);
    let calls = emu.stats().api_calls;
    // create, upload, close, two polls (in progress, complete), successful results.
    assert_eq!(calls, 6, "4 calls and 2 polls");

    // Again, with one record in 1,000 refused: the refusals come back against their records;
    // the rest are updates.
    let again = accounts(20_000, 1_000);
    let results = client
        .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &again)
        .await?;
    let failed: Vec<usize> = (0..results.len())
        .filter(|i| !results[*i].success)
        .collect();
    assert_eq!(failed.len(), 20);
    assert!(failed.iter().all(|i| i % 1_000 == 0));
    assert!(
        results[0].errors[0].starts_with("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: "),
        "{:?}",
        results[0].errors
    );
    assert!(results[1].success && !results[1].created);
    assert_eq!(emu.stats().api_calls - calls, 7, "failedResults read too");
    Ok(())
}

/// An emulator with three Accounts made by one Bulk upsert, a client of it, and their ids.
async fn three_accounts() -> Result<(SalesforceEmulator, SalesforceClient, Vec<String>)> {
    let emu = SalesforceEmulator::start(sf::Options::default()).await?;
    let client = client(&emu);
    let created = client
        .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &accounts(3, 0))
        .await?;
    let ids: Vec<String> = created.iter().filter_map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 3);
    Ok((emu, client, ids))
}

/// Salesforce calls since `before`, the Bulk jobs' state polls left out (their number depends
/// on timing).
fn calls_besides_polls(emu: &SalesforceEmulator, before: &sf::Stats) -> u64 {
    let stats = emu.stats();
    stats.api_calls - before.api_calls - (stats.bulk_state_polls - before.bulk_state_polls)
}

/// An update by Id through one ingest job: each outcome matched back by Id, a refused value and
/// an Id the org does not hold failing only their own records.
#[tokio::test]
async fn an_update_by_id_in_one_job_matches_each_outcome_back_by_id() -> Result<()> {
    use shared::ports::SalesforceApi as _;
    let (emu, client, ids) = three_accounts().await?;
    let before = emu.stats();
    let update = |id: &str, industry: &str| {
        json!({"Id": id, "Name": format!("Renamed {id}"), "Industry": industry})
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    let unknown = format!("{}XYZ", &ids[0][..15]);
    let records = vec![
        update(&ids[2], "Retail"),
        update(&ids[0], "Underwater Basket Weaving"),
        update(&unknown, "Retail"),
        update(&ids[1], "Banking"),
    ];
    let results = client.bulk_update("Account", &records).await?;
    let ok: Vec<bool> = results.iter().map(|r| r.success).collect();
    assert_eq!(ok, [true, false, false, true], "{results:?}");
    assert_eq!(results[0].id.as_deref(), Some(ids[2].as_str()));
    assert!(
        results[1].errors[0].starts_with("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: "),
        "{:?}",
        results[1].errors
    );
    let stored = emu.records("Account");
    let name_of = |id: &str| {
        (stored.iter())
            .find(|r| r.get("Id").and_then(|v| v.as_str()) == Some(id))
            .and_then(|r| r.get("Name").cloned())
    };
    assert_eq!(name_of(&ids[1]), Some(json!(format!("Renamed {}", ids[1]))));
    assert_eq!(
        name_of(&ids[0]),
        Some(json!("Bulk 0")),
        "the refused one is untouched"
    );
    assert_eq!(
        calls_besides_polls(&emu, &before),
        5,
        "one job: create, upload, close, both result files"
    );
    Ok(())
}

/// An update by Id that every record passes reads no result file: each record's id is its own.
#[tokio::test]
async fn an_update_every_record_passes_costs_three_calls_and_its_polls() -> Result<()> {
    use shared::ports::SalesforceApi as _;
    let (emu, client, ids) = three_accounts().await?;
    let before = emu.stats();
    let records: Vec<Fields> = (ids.iter().rev())
        .map(|id| {
            let r = json!({"Id": id, "Name": format!("Renamed {id}")});
            r.as_object().cloned().unwrap_or_default()
        })
        .collect();
    let results = client.bulk_update("Account", &records).await?;
    let got: Vec<(bool, bool, Option<&str>)> = (results.iter())
        .map(|r| (r.success, r.created, r.id.as_deref()))
        .collect();
    let want: Vec<(bool, bool, Option<&str>)> = ids
        .iter()
        .rev()
        .map(|id| (true, false, Some(id.as_str())))
        .collect();
    assert_eq!(got, want);
    let renamed = (emu.records("Account").iter())
        .filter(|r| {
            r["Name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Renamed "))
        })
        .count();
    assert_eq!(renamed, 3);
    assert_eq!(
        calls_besides_polls(&emu, &before),
        3,
        "create, upload, close; no result file"
    );
    Ok(())
}

/// A job that fails partway: what it processed has its results, what it never reached comes back
/// from `unprocessedrecords` as retryable failures that say why.
#[tokio::test]
async fn a_job_that_fails_partway_hands_back_its_unprocessed_records_to_try_again() -> Result<()> {
    let emu = SalesforceEmulator::start(sf::Options::default()).await?;
    let client = client(&emu);
    emu.inject(sf::Fault::BulkFailAfter {
        rows: 600,
        times: 1,
    });
    let records = accounts(1_000, 0);
    let results = client
        .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &records)
        .await?;
    let written = results.iter().filter(|r| r.success).count();
    assert_eq!(written, 600);
    assert_eq!(emu.records("Account").len(), 600);
    let rest: Vec<_> = results.iter().filter(|r| !r.success).collect();
    assert_eq!(rest.len(), 400);
    assert!(rest.iter().all(|r| r.retryable), "worth trying again");
    assert!(
        rest[0].errors[0].starts_with("not processed: bulk job ")
            && rest[0].errors[0].contains("ended Failed: InternalServerError"),
        "{:?}",
        rest[0].errors
    );
    // create, upload, close, polls, successful results, unprocessed records.
    let stats = emu.stats();
    assert_eq!(stats.api_calls - stats.bulk_state_polls, 5);
    Ok(())
}

/// A bulk read: one query job, then its results set by set by locator (each set naming the next,
/// the last none), every value as text and an empty cell as null; the calls counted.
#[tokio::test]
async fn a_bulk_read_comes_in_sets_by_locator() -> Result<()> {
    use shared::ports::{SalesforceBulkRead, SfSelect};
    let emu = SalesforceEmulator::start(sf::Options::default()).await?;
    let client = client(&emu);
    let mut records = accounts(2_500, 0);
    records[3].insert("AnnualRevenue".into(), serde_json::Value::Null);
    client
        .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &records)
        .await?;
    let before = emu.stats().api_calls;
    let select = SfSelect {
        fields: ["Id", "Gainsight_Company_Id__c", "AnnualRevenue"]
            .map(String::from)
            .to_vec(),
        order_by: vec!["Gainsight_Company_Id__c".into()],
        ..SfSelect::from_object("Account")
    };
    let job = client.start_bulk_read(&select).await?;
    let (mut rows, mut sets, mut locator) = (Vec::new(), 0, None);
    loop {
        let set = client
            .bulk_read_set(&job, locator.as_deref(), 1_000)
            .await?;
        sets += 1;
        for row in set.rows {
            rows.push(row?);
        }
        match set.next {
            Some(next) => locator = Some(next),
            None => break,
        }
    }
    assert_eq!((sets, rows.len()), (3, 2_500));
    assert_eq!(rows[2]["Gainsight_Company_Id__c"], json!("B00002"));
    assert_eq!(
        rows[2]["AnnualRevenue"],
        json!("2.0"),
        "values come as text"
    );
    assert_eq!(rows[3]["AnnualRevenue"], serde_json::Value::Null);
    // create, two polls (in progress, complete), three sets.
    assert_eq!(emu.stats().api_calls - before, 6);
    assert_eq!(emu.stats().bulk_query_jobs, 1);
    Ok(())
}

/// A client that remembers its ingest jobs in the state table (moto) and waits at most `wait`
/// for one; the table's store, and moto to keep it up.
async fn remembering(
    emu: &SalesforceEmulator,
    wait: std::time::Duration,
) -> Result<(SalesforceClient, Arc<DynamoStateStore>, LocalAws)> {
    let (aws, clients, resources) = common::setup().await?;
    let jobs = Arc::new(clients.state_store(&resources));
    Ok((client(emu).with_bulk_jobs(jobs.clone(), wait), jobs, aws))
}

/// The jobs the table remembers, by their items.
async fn remembered(store: &DynamoStateStore) -> Result<usize> {
    let items = (store.client().scan())
        .table_name(store.table())
        .filter_expression("begins_with(pk, :p)")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("BULKJOB#".into()),
        )
        .send()
        .await?;
    Ok(items.items().len())
}

/// A job still running when the client can wait no longer is `StillRunning`; the same records
/// written again, in another order, collect that job's results: Salesforce is given them once.
#[tokio::test]
async fn a_job_still_running_is_collected_by_the_next_writer_not_submitted_again() -> Result<()> {
    let emu = SalesforceEmulator::start(sf::Options::default()).await?;
    // 300 ms leaves time for three polls at most; the job needs eight.
    let (client, jobs, _aws) = remembering(&emu, std::time::Duration::from_millis(300)).await?;
    emu.inject(sf::Fault::BulkSlow { polls: 6, times: 1 });
    let records = accounts(500, 0);
    let first = client
        .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &records)
        .await;
    match first {
        Err(shared::ports::ApiError::StillRunning { job, .. }) => {
            assert!(job.starts_with("bulk job 750"), "{job}")
        }
        other => panic!("expected the job still running, got {other:?}"),
    }
    assert_eq!(remembered(&jobs).await?, 1, "the job is remembered");
    assert!(emu.records("Account").is_empty(), "not processed yet");
    let mut reversed = records.clone();
    reversed.reverse();
    let mut tries = 1;
    let results = loop {
        tries += 1;
        match client
            .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &reversed)
            .await
        {
            Err(shared::ports::ApiError::StillRunning { .. }) if tries < 10 => continue,
            other => break other?,
        }
    };
    assert_eq!(emu.stats().bulk_jobs, 1, "one job in {tries} writes");
    let accounts = emu.records("Account");
    assert_eq!(accounts.len(), 500);
    let id_of: std::collections::HashMap<String, String> = (accounts.iter())
        .map(|a| {
            (
                a["Gainsight_Company_Id__c"].as_str().unwrap().to_string(),
                a["Id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (record, result) in reversed.iter().zip(&results) {
        let gsid = record["Gainsight_Company_Id__c"].as_str().unwrap();
        assert!(result.success && result.created, "{gsid}: {result:?}");
        assert_eq!(result.id.as_deref(), Some(id_of[gsid].as_str()), "{gsid}");
    }
    Ok(())
}

/// A job that failed is forgotten once collected: what it left unprocessed, written again, goes
/// in a job of its own instead of collecting the failed one's answer again.
#[tokio::test]
async fn a_failed_job_is_forgotten_so_the_records_go_again() -> Result<()> {
    let emu = SalesforceEmulator::start(sf::Options::default()).await?;
    let (client, jobs, _aws) = remembering(&emu, std::time::Duration::from_secs(60)).await?;
    emu.inject(sf::Fault::BulkFailAfter { rows: 60, times: 1 });
    let records = accounts(100, 0);
    let first = client
        .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &records)
        .await?;
    assert_eq!(first.iter().filter(|r| r.success).count(), 60);
    assert_eq!(remembered(&jobs).await?, 0, "forgotten");
    let again = client
        .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &records)
        .await?;
    assert!(again.iter().all(|r| r.success));
    assert_eq!(emu.stats().bulk_jobs, 2);
    assert_eq!(emu.records("Account").len(), 100);
    // A completed job is remembered: the same records again are answered from it.
    let third = client
        .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &records)
        .await?;
    assert!(third.iter().all(|r| r.success));
    assert_eq!(emu.stats().bulk_jobs, 2, "collected, not submitted");
    Ok(())
}
