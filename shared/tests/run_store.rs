//! The run store on DynamoDB (moto, the table deployed from `infra/template.yaml`): runs by day,
//! their logs whole however long.

use anyhow::Result;

mod common;
use common::setup;

#[tokio::test]
async fn dynamo_keeps_runs_by_day_with_their_logs() -> Result<()> {
    use shared::domain::{LineOutcome, RunFunction, RunLine, Runs};
    use shared::ports::RunStore;
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let day = 86_400_000;
    let mut stored = Vec::new();
    for (i, started) in [10 * day - 1, 10 * day + 5, 12 * day]
        .into_iter()
        .enumerate()
    {
        let mut runs = Runs::new(RunFunction::Pusher, "writes batch", started, &i.to_string());
        runs.line(Some("job"), RunLine::new("G1", LineOutcome::Synced));
        runs.line(
            Some("job"),
            RunLine::new("G2", LineOutcome::Error).message("REQUIRED_FIELD_MISSING: Name"),
        );
        let done = runs.finish(started + 3);
        store.put_runs(&done).await?;
        stored.extend(done);
    }
    // Two day partitions, newest first, without their logs.
    let listed = store.runs(10 * day - 10, 10 * day + 10).await?;
    let ids: Vec<_> = listed.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, [stored[1].id.clone(), stored[0].id.clone()]);
    assert!(listed.iter().all(|r| r.log.is_empty() && r.failed == 1));
    let one = store.run(&stored[2].id).await?.expect("the run");
    assert_eq!(one, stored[2], "read back whole, log included");

    // A log far over an item's 400 KB is stored in parts and read back whole, every line, and
    // the run is still listed once.
    let mut runs = Runs::new(RunFunction::Pusher, "writes batch", 20 * day, "big");
    for i in 0..3_000 {
        let line = RunLine::new(format!("R{i}"), LineOutcome::Error).message("x".repeat(500));
        runs.line(Some("job"), line);
    }
    let big = runs.finish(20 * day + 3);
    store.put_runs(&big).await?;
    let back = store.run(&big[0].id).await?.expect("the run");
    assert_eq!(back.log.len(), 3_000);
    assert_eq!(back, big[0]);
    assert_eq!(store.runs(20 * day - 1, 20 * day + 1).await?.len(), 1);
    Ok(())
}
