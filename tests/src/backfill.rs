//! A backfill through the product on the local stack, shared by the Bulk test and the bench:
//! Companies that were in Gainsight before the sync, `resync all` through the Lambda Invoke API
//! page by page, and the wait until every one is an Account and synced in the ledger.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::Stack;

/// What a backfill cost: the resync's run, its Salesforce calls (state polls apart), Bulk jobs,
/// Collections calls, and how long it took from the first resync call to the last record synced.
#[derive(Debug)]
pub struct Backfill {
    pub run: String,
    pub salesforce_calls: u64,
    pub state_polls: u64,
    pub bulk_jobs: u64,
    pub collection_calls: u64,
    pub elapsed: Duration,
    /// When the resync started (epoch ms), to find its runs.
    pub started_ms: i64,
}

/// Creates `n` Companies quietly, backfills them with `resync all` and waits (up to `timeout`)
/// until every one is synced.
pub async fn backfill_companies(stack: &Stack, n: usize, timeout: Duration) -> Result<Backfill> {
    let companies: Vec<Value> = (0..n)
        .map(|i| json!({"Name": format!("Backfill {i:05}"), "Industry": "Energy"}))
        .collect();
    for chunk in companies.chunks(50) {
        stack
            .gainsight_insert_quietly("Company", chunk.to_vec())
            .await?;
    }
    let before = stack.salesforce.stats();
    let (started, started_ms) = (Instant::now(), shared::time::now_ms());
    let mut request = json!({"job": "company_account", "all": true});
    let mut run = String::new();
    loop {
        let report = stack.invoke_resync(request).await?;
        run = report["run"].as_str().unwrap_or(&run).to_string();
        match report.get("continuation") {
            Some(next) if !next.is_null() => request = next.clone(),
            _ => break,
        }
    }
    stack
        .eventually(timeout, "every Account synced", || async {
            let records = stack.ledger_records().await?;
            let synced = records.iter().filter(|r| r.synced).count();
            Ok((synced == n && stack.salesforce.records("Account").len() == n).then_some(()))
        })
        .await?;
    let after = stack.salesforce.stats();
    let state_polls = after.bulk_state_polls - before.bulk_state_polls;
    Ok(Backfill {
        run,
        salesforce_calls: after.api_calls - before.api_calls - state_polls,
        state_polls,
        bulk_jobs: after.bulk_jobs - before.bulk_jobs,
        collection_calls: after.upsert_calls - before.upsert_calls,
        elapsed: started.elapsed(),
        started_ms,
    })
}
