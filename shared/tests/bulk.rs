//! Bulk API 2.0 ingest through the Salesforce client against the emulator: a 20,000-record load
//! in one job, four calls plus the state polls, each record's outcome matched back by external ID;
//! an update by Id the same way; and Bulk API 2.0 query: a read in sets by locator.

use anyhow::Result;
use devstack::salesforce::{self as sf, SalesforceEmulator};
use serde_json::json;
use shared::adapters::salesforce::SalesforceClient;
use shared::config::SalesforceSettings;
use shared::domain::Fields;
use shared::secret::Secret;

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

/// An update by Id through one ingest job: each outcome matched back by Id, a refused value and
/// an Id the org does not hold failing only their own records.
#[tokio::test]
async fn an_update_by_id_in_one_job_matches_each_outcome_back_by_id() -> Result<()> {
    use shared::ports::SalesforceApi as _;
    let emu = SalesforceEmulator::start(sf::Options::default()).await?;
    let client = client(&emu);
    let created = client
        .bulk_upsert_job("Account", "Gainsight_Company_Id__c", &accounts(3, 0))
        .await?;
    let ids: Vec<String> = created.iter().filter_map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 3);
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
    let stats = emu.stats();
    let polls = stats.bulk_state_polls - before.bulk_state_polls;
    assert_eq!(
        stats.api_calls - before.api_calls - polls,
        5,
        "one job: create, upload, close, both result files"
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
        rows.extend(set.rows);
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
