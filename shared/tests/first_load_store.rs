//! The first-load store on DynamoDB (moto, the table deployed from `infra/template.yaml`): a load
//! and its chunks round-trip (a chunk too large for one item in parts), its checkpoint moves once per chunk, and a second load cannot
//! replace one in progress.

use anyhow::Result;
use shared::domain::first_load::steps::{FirstLoad, FirstLoadState, Read, Step};
use shared::domain::first_load::Counts;
use shared::domain::System;
use shared::ports::FirstLoadStore;

mod common;
use common::setup;

fn load(run: &str, chunks: usize) -> FirstLoad {
    FirstLoad {
        job: "company_account".into(),
        run: run.into(),
        state: FirstLoadState::Applying,
        chunks,
        done: 0,
        steps: 2_001,
        counts: Counts {
            link_by_match_key: 1,
            ..Counts::default()
        },
        read: Read {
            gainsight: 3,
            salesforce: 2,
        },
        started_ms: 1_800_000_000_000,
        from: Some(shared::domain::System::Gainsight),
    }
}

/// Stores `chunks`, then begins `load`, as the resync function does.
#[async_trait::async_trait]
trait Begin {
    async fn begin(&self, load: &FirstLoad, chunks: &[Vec<Step>]) -> Result<bool>;
}

#[async_trait::async_trait]
impl<S: FirstLoadStore> Begin for S {
    async fn begin(&self, load: &FirstLoad, chunks: &[Vec<Step>]) -> Result<bool> {
        for (index, steps) in chunks.iter().enumerate() {
            self.put_first_load_chunk(load, index, steps).await?;
        }
        Ok(self.begin_first_load(load).await?)
    }
}

#[tokio::test]
async fn dynamo_keeps_a_first_load_its_chunks_and_its_checkpoint() -> Result<()> {
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let job = "company_account";
    assert_eq!(store.first_load(job).await?, None);
    // A chunk of the largest size, so the item limit is exercised with realistic ids.
    let links: Vec<Step> = (0..2_000)
        .map(|i| Step::Link {
            gsid: format!("1P02ABCDEFGHIJKLMN{i:06}"),
            salesforce_id: format!("001{i:015}"),
            by: "match key Domain ~ Website".into(),
        })
        .collect();
    // Writes carrying their records: about 700 KB of JSON, more than one item holds.
    let writes: Vec<Step> = (0..2_000)
        .map(|i| {
            let record = serde_json::json!({
                "Id": format!("001{i:015}"), "Name": format!("Account {i}"),
                "Description": "x".repeat(250), "AnnualRevenue": "1000.0",
            });
            Step::Write {
                from: System::Salesforce,
                id: format!("001{i:015}"),
                record: record.as_object().cloned(),
            }
        })
        .collect();
    let first = load("run-1", 2);
    assert!(
        store
            .begin(&first, &[links.clone(), writes.clone()])
            .await?
    );
    assert_eq!(store.first_load(job).await?, Some(first.clone()));
    assert_eq!(store.first_load_chunk(job, "run-1", 0).await?, links);
    assert_eq!(
        store.first_load_chunk(job, "run-1", 1).await?,
        writes,
        "every part, in order"
    );
    let missing = store.first_load_chunk(job, "run-1", 2).await.unwrap_err();
    assert!(
        missing.to_string().contains("chunk 2 of load run-1"),
        "{missing}"
    );

    assert!(
        !store.begin(&load("run-2", 1), &[vec![]]).await?,
        "one load in progress per job"
    );
    assert!(
        store
            .advance_first_load(job, "run-1", (0, FirstLoadState::Applying))
            .await?
    );
    assert!(
        !store
            .advance_first_load(job, "run-1", (0, FirstLoadState::Applying))
            .await?,
        "the checkpoint moves once per chunk"
    );
    assert!(
        !store
            .advance_first_load(job, "run-2", (1, FirstLoadState::Done))
            .await?
    );
    let now = store.first_load(job).await?.expect("stored");
    assert_eq!((now.done, now.state), (1, FirstLoadState::Applying));

    assert!(
        store
            .advance_first_load(job, "run-1", (1, FirstLoadState::Done))
            .await?
    );
    assert!(!store.cancel_first_load(job).await?, "nothing in progress");
    let done = store.first_load(job).await?.expect("stored");
    assert_eq!((done.done, done.state), (2, FirstLoadState::Done));

    // An ended load is replaced by the next, which can be cancelled.
    assert!(store.begin(&load("run-2", 1), &[writes]).await?);
    assert!(store.cancel_first_load(job).await?);
    let cancelled = store.first_load(job).await?.expect("stored");
    assert_eq!(
        (cancelled.run.as_str(), cancelled.state),
        ("run-2", FirstLoadState::Cancelled)
    );
    assert!(
        !store
            .advance_first_load(job, "run-2", (0, FirstLoadState::Done))
            .await?
    );
    Ok(())
}
