//! The first load's plan at volume: both emulators seeded with data that was there before the
//! sync (a deterministic mix of pairs linked by the GSID an Account carries, pairs linked by the
//! Account Id a Company carries, some with names that differ, records on one side only, and
//! ambiguous claims), then `syncctl load --dry-run` run as an operator runs it: seconds, both
//! systems' calls, syncctl's peak RSS, and its counts checked against the mix.

use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use sync_tests::{Options, Stack};

use super::report;

fn record(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// A unit of the mix holds 8 pairs linked by a carried GSID (4 with names that differ), 4 linked
/// by a carried Account Id, 4 Companies and 3 Accounts alone, and 2 Companies claiming 1 Account:
/// 18 Companies and 16 Accounts.
const COMPANIES_PER_UNIT: usize = 18;

/// Seeds `units` units of the mix; the counts the plan must find.
fn seed(stack: &Stack, units: usize) -> Value {
    let sf = &stack.salesforce;
    let accounts = |f: &dyn Fn(usize) -> Vec<Value>| -> Vec<String> {
        let rows = (0..units).flat_map(f).map(record).collect();
        sf.seed_quietly("Account", rows)
    };
    let by_id = accounts(&|u| {
        (0..4)
            .map(|j| json!({"Name": format!("Id {u}-{j}")}))
            .collect()
    });
    let claimed = accounts(&|u| vec![json!({"Name": format!("Claimed {u}")})]);
    accounts(&|u| {
        (0..3)
            .map(|j| json!({"Name": format!("Alone {u}-{j}")}))
            .collect()
    });
    let companies = |rows: Vec<Value>| {
        stack
            .gainsight
            .seed_quietly("Company", rows.into_iter().map(record).collect())
    };
    let carried = companies(
        (0..units * 8)
            .map(|k| json!({"Name": format!("Carried {k}")}))
            .collect(),
    );
    companies(
        by_id
            .iter()
            .enumerate()
            .map(|(k, id)| json!({"Name": format!("Id {}-{}", k / 4, k % 4), "SfdcAccountId": id}))
            .collect(),
    );
    companies(
        (0..units * 4)
            .map(|k| json!({"Name": format!("Only {k}")}))
            .collect(),
    );
    companies(
        claimed
            .iter()
            .flat_map(|id| {
                [
                    json!({"Name": "Claim A", "SfdcAccountId": id}),
                    json!({"Name": "Claim B", "SfdcAccountId": id}),
                ]
            })
            .collect(),
    );
    let carrying = carried.iter().enumerate().map(|(k, gsid)| {
        let name = if k % 2 == 0 {
            format!("Carried {k}")
        } else {
            format!("Carried {k} Inc")
        };
        record(json!({"Name": name, "Gainsight_Company_Id__c": gsid}))
    });
    sf.seed_quietly("Account", carrying.collect());
    json!({"alreadyLinked": 0, "linkByIdentifier": units * 12, "linkByMatchKey": 0,
        "createInSalesforce": units * 4, "createInGainsight": units * 3, "toUpdate": units * 4,
        "ambiguous": units * 3, "leftAlone": 0})
}

/// Runs `syncctl` with `args` against `stack`: its JSON answer and its peak RSS (MB).
async fn syncctl(stack: &Stack, args: &[&str]) -> Result<(Value, f64)> {
    let bin = std::env::var("SYNCCTL").unwrap_or_else(|_| "target/perf/syncctl".into());
    let child = tokio::process::Command::new(&bin)
        .args(args)
        .envs(stack.syncctl_env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("{bin} (set SYNCCTL to a built syncctl)"))?;
    let pid = child.id().context("no pid")?;
    // The answer is read while it is written (a full pipe would stall syncctl); its peak RSS is
    // sampled meanwhile.
    let sampler = tokio::spawn(async move {
        let mut peak_kb = 0.0_f64;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let hwm = (status.lines().find(|l| l.starts_with("VmHWM:")))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok());
            peak_kb = peak_kb.max(hwm.unwrap_or(0.0));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        peak_kb
    });
    let out = child.wait_with_output().await?;
    let peak_kb = sampler.await.unwrap_or(0.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(out.status.success(), "syncctl {args:?}: {stderr}");
    Ok((serde_json::from_slice(&out.stdout)?, peak_kb / 1024.0))
}

/// The dry run over about `per_side` records a side (the mix's units of 20 fit in it; the figures
/// are named by `per_side`).
pub async fn dry_run(per_side: usize) -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let units = per_side / COMPANIES_PER_UNIT;
    let expected = seed(&stack, units);
    let (sf, gs) = (stack.salesforce.stats(), stack.gainsight.stats());
    let started = Instant::now();
    let args = [
        "load",
        "--job",
        "company_account",
        "--dry-run",
        "--format",
        "json",
    ];
    let (plan, rss_mb) = syncctl(&stack, &args).await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        plan["counts"] == expected,
        "the plan's counts {} are not the mix's {expected}",
        plan["counts"]
    );
    let n = per_side;
    eprintln!("first load dry run: read {}", plan["read"]);
    report(
        &format!("first_load_dry_run_{n}_seconds"),
        format!("{seconds:.1}"),
        "s",
    );
    let sf_calls = stack.salesforce.stats().api_calls - sf.api_calls;
    report(
        &format!("first_load_dry_run_{n}_salesforce_calls"),
        sf_calls,
        "calls",
    );
    let gs_calls = stack.gainsight.stats().api_calls - gs.api_calls;
    report(
        &format!("first_load_dry_run_{n}_gainsight_calls"),
        gs_calls,
        "calls",
    );
    report(
        &format!("first_load_dry_run_{n}_syncctl_peak_rss"),
        format!("{rss_mb:.1}"),
        "MB",
    );
    stack.stop().await;
    Ok(())
}
