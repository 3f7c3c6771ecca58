//! A flood at the public endpoint on the local stack: forged events sent by many attackers at
//! once are answered 429 beyond the webhook's reserved concurrency (as Lambda answers a Function
//! URL: at most the reserved concurrency in flight and ten times it started a second) and 401
//! within it, nothing forged is queued or written, and genuine changes sent through the flood
//! all sync: through the webhook when a try gets through, else through the job's scheduled poll.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use sync_tests::flood::flood;
use sync_tests::{Options, Stack};

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_is_throttled_at_the_reserved_concurrency_while_genuine_changes_sync() -> Result<()>
{
    // The company_account poll (every 10 minutes) every 10 s.
    let options = Options {
        parameters: vec![("WebhookConcurrency", "2")],
        schedule_speedup: Some(60),
        ..Options::default()
    };
    let stack = Stack::start(options).await?;
    let companies = (0..20)
        .map(|i| json!({"Name": format!("Genuine {i:02}")}))
        .collect();
    let gsids = stack.gainsight_insert_quietly("Company", companies).await?;
    let report = flood(&stack, &gsids, 10, 40).await?;
    // 40 attackers in flight against 2 slots: most are throttled, the rest refused unsigned.
    assert!(report.forged_throttled > 0, "{report:?}");
    assert!(report.forged_refused > 0, "{report:?}");
    assert_eq!(report.forged_other, 0, "{report:?}");
    assert_eq!(report.genuine, 20);
    for gsid in &gsids {
        stack
            .eventually(WAIT, "the genuine change's Account", || async {
                Ok(stack.accounts_for(gsid).pop())
            })
            .await?;
    }
    assert!(
        stack.ledger("1P02FORGED0000000001").await?.is_none(),
        "a forged record"
    );
    let accounts = stack.salesforce.records("Account");
    assert_eq!(
        accounts.len(),
        20,
        "one Account per genuine Company, none forged"
    );
    stack.stop().await;
    Ok(())
}
