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
        "refusedByValidation": 0, "ambiguous": units * 3, "leftAlone": 0})
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

/// The resync function's first invocation of a load over about `per_side` records a side, the
/// one that reads both sides, plans and stores the chunks (the load's largest): its time and
/// the binary's peak RSS, at 10,000 and `per_side`, and the growth between them.
pub async fn plan_figures(per_side: usize) -> Result<()> {
    let small = plan_once(10_000).await?;
    let big = plan_once(per_side).await?;
    let n = per_side;
    report(
        &format!("first_load_plan_{n}_seconds"),
        format!("{:.1}", big.0),
        "s",
    );
    report(
        &format!("first_load_plan_{n}_resync_peak_rss"),
        format!("{:.1}", big.1),
        "MB",
    );
    report(
        &format!("first_load_plan_rss_growth_10k_to_{}", short(n)),
        format!("{:.2}", big.1 / small.1),
        "x",
    );
    Ok(())
}

/// The resync binary (`RESYNC_BIN`, default `target/perf/resync`) under the Runtime API, its
/// peak RSS sampled until `stop` is set.
struct Resync {
    runtime: devstack::runtime_api::RuntimeApi,
    child: tokio::process::Child,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    rss: tokio::task::JoinHandle<f64>,
}

impl Resync {
    async fn start(stack: &Stack) -> Result<Self> {
        let bin = std::env::var("RESYNC_BIN").unwrap_or_else(|_| "target/perf/resync".into());
        let timeout = stack.aws.deployment.timeout("ResyncFunction")?;
        let runtime = devstack::runtime_api::RuntimeApi::start(timeout).await?;
        let child = runtime
            .command(&bin, "resync")
            .envs(stack.syncctl_env())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("{bin} (set RESYNC_BIN to a built resync binary)"))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rss = sample_rss(child.id().context("no pid")?, stop.clone());
        Ok(Resync {
            runtime,
            child,
            stop,
            rss,
        })
    }
}

/// Seconds and the resync binary's peak RSS (MB) of a load's planning invocation.
async fn plan_once(per_side: usize) -> Result<(f64, f64)> {
    let stack = Stack::start(Options::default()).await?;
    seed(&stack, per_side / COMPANIES_PER_UNIT);
    let Resync {
        runtime,
        mut child,
        stop,
        rss,
    } = Resync::start(&stack).await?;
    let started = Instant::now();
    let asked = json!({"job": "company_account", "load": "run"});
    let answer = runtime
        .invoke(asked, std::time::Duration::from_secs(900))
        .await?
        .map_err(|e| anyhow::anyhow!("resync failed: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = rss.await.unwrap_or(0.0);
    child.kill().await?;
    eprintln!(
        "first load plan of {per_side}: {} chunks in {seconds:.1} s, resync peak RSS {peak:.1} MB",
        answer["load"]["chunks"]
    );
    stack.stop().await;
    Ok((seconds, peak))
}

/// What one measured load did.
pub struct Measured {
    pub seconds: f64,
    pub salesforce_calls: u64,
    pub gainsight_calls: u64,
    pub aws_requests: u64,
    pub resync_peak_rss_mb: f64,
    /// The mapper's and the pusher's peak RSS (MB), the highest of each function's processes.
    pub functions_peak_rss_mb: Vec<(&'static str, f64)>,
}

/// Where the mapper and pusher binaries the load runs are (`FUNCTION_BINARIES`, default
/// `target/perf`).
fn function_binaries() -> Result<std::path::PathBuf> {
    let dir = std::env::var("FUNCTION_BINARIES").unwrap_or_else(|_| "target/perf".into());
    sync_tests::function_binaries_in(std::path::Path::new(&dir))
}

/// Peak RSS (VmHWM, MB) of process `pid` until it exits or `stop` is set.
fn sample_rss(
    pid: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<f64> {
    tokio::spawn(async move {
        let mut peak_kb = 0.0_f64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                break;
            };
            let hwm = (status.lines().find(|l| l.starts_with("VmHWM:")))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok());
            peak_kb = peak_kb.max(hwm.unwrap_or(0.0));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        peak_kb / 1024.0
    })
}

/// Invokes the resync binary behind `runtime` with a first load's request until it answers
/// without a continuation; its last answer.
async fn drive_load(runtime: &devstack::runtime_api::RuntimeApi) -> Result<Value> {
    let mut asked = json!({"job": "company_account", "load": "run"});
    loop {
        let answer = runtime
            .invoke(asked.clone(), std::time::Duration::from_secs(900))
            .await?
            .map_err(|e| anyhow::anyhow!("resync failed: {e}"))?;
        match answer.get("continuation") {
            Some(next) if !next.is_null() => asked = next.clone(),
            _ => return Ok(answer),
        }
    }
}

/// Waits until the stack holds `want` (Accounts, Companies) and its queues are empty, failing
/// at once if a record is created twice. The records are counted, not copied: a copy of every
/// record per look would take the emulators' locks, and a core, from the load being measured.
async fn landed(stack: &Stack, want: (usize, usize)) -> Result<()> {
    // 30 minutes per 100,000 Companies at least.
    let wait = std::time::Duration::from_secs(1800.max(want.1 as u64 / 55));
    let started = Instant::now();
    let told = std::sync::atomic::AtomicU64::new(0);
    let check = || async {
        let now = (
            stack.salesforce.count("Account"),
            stack.gainsight.count("Company"),
        );
        // A line a minute, so that a run stopped before the end still tells how far it got
        // and what it had cost.
        let minute = started.elapsed().as_secs() / 60;
        if told.fetch_max(minute, std::sync::atomic::Ordering::Relaxed) < minute {
            eprintln!(
                "landing: {minute} min, {now:?} of {want:?}, {} Salesforce / {} Gainsight calls so far",
                stack.salesforce.stats().api_calls,
                stack.gainsight.stats().api_calls
            );
        }
        anyhow::ensure!(
            now.0 <= want.0 && now.1 <= want.1,
            "created twice: {now:?} > {want:?}"
        );
        Ok((now == want).then_some(()))
    };
    stack.eventually(wait, "every creation", check).await?;
    stack.drained(wait).await
}

/// The whole first load over about `per_side` records a side, the resync function running as
/// its own binary (`RESYNC_BIN`, default `target/perf/resync`) under the Runtime API, and the
/// mapper and pusher as theirs (`FUNCTION_BINARIES`), as deployed: from the
/// first invocation until every planned creation and update has landed and the queues are
/// empty. Checks the load's counts against the mix and that nothing was created twice.
pub async fn load(per_side: usize) -> Result<Measured> {
    let options = Options {
        function_binaries: Some(function_binaries()?),
        ..Options::default()
    };
    let stack = Stack::start(options).await?;
    let units = per_side / COMPANIES_PER_UNIT;
    let expected = seed(&stack, units);
    let Resync {
        runtime,
        mut child,
        stop,
        rss,
    } = Resync::start(&stack).await?;
    let (accounts, companies) = (
        stack.salesforce.count("Account"),
        stack.gainsight.count("Company"),
    );
    let (sf, gs) = (stack.salesforce.stats(), stack.gainsight.stats());
    let aws_before: u64 = stack.aws.requests().await?.values().sum();
    eprintln!(
        "first load of {per_side}: starting with {} Salesforce / {} Gainsight calls made",
        sf.api_calls, gs.api_calls
    );
    let started = Instant::now();
    let answer = drive_load(&runtime).await?;
    let applied_s = started.elapsed().as_secs_f64();
    let counts = &answer["load"]["counts"];
    for name in [
        "linkByIdentifier",
        "createInSalesforce",
        "createInGainsight",
        "toUpdate",
        "ambiguous",
    ] {
        anyhow::ensure!(
            counts[name] == expected[name],
            "the load's {name} {} is not the mix's {}",
            counts[name],
            expected[name]
        );
    }
    landed(&stack, (accounts + units * 4, companies + units * 3)).await?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "first load of {per_side}: planned and applied ({} chunks) in {applied_s:.1} s, every write landed {:.1} s later",
        answer["load"]["chunks"],
        seconds - applied_s
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let resync_peak_rss_mb = rss.await.unwrap_or(0.0);
    child.kill().await?;
    let functions_peak_rss_mb = stack.function_peak_rss_mb();
    eprintln!("first load of {per_side}: peak RSS of the functions' processes {functions_peak_rss_mb:?} MB, resync {resync_peak_rss_mb:.1} MB");
    let measured = Measured {
        seconds,
        salesforce_calls: stack.salesforce.stats().api_calls - sf.api_calls,
        gainsight_calls: stack.gainsight.stats().api_calls - gs.api_calls,
        aws_requests: stack.aws.requests().await?.values().sum::<u64>() - aws_before,
        resync_peak_rss_mb,
        functions_peak_rss_mb,
    };
    stack.stop().await;
    Ok(measured)
}

/// The load at 10,000 and `per_side` records a side, printed as issue 24 names its figures.
pub async fn figures(per_side: usize) -> Result<()> {
    let small = load(10_000).await?;
    let big = if per_side == 10_000 {
        None
    } else {
        Some(load(per_side).await?)
    };
    let n = per_side;
    let at = big.as_ref().unwrap_or(&small);
    let records = (n * 2) as f64;
    report(
        &format!("first_load_{n}_seconds"),
        format!("{:.1}", at.seconds),
        "s",
    );
    report(
        &format!("first_load_{n}_salesforce_calls"),
        at.salesforce_calls,
        "calls",
    );
    report(
        &format!("first_load_{n}_gainsight_calls"),
        at.gainsight_calls,
        "calls",
    );
    report(
        &format!("first_load_{n}_aws_requests_per_record"),
        format!("{:.2}", at.aws_requests as f64 / records),
        "requests",
    );
    report(
        "first_load_peak_rss_mb",
        format!("{:.1}", at.resync_peak_rss_mb),
        "MB",
    );
    for (function, mb) in &at.functions_peak_rss_mb {
        let name = function.trim_end_matches("Function").to_lowercase();
        report(
            &format!("first_load_{n}_{name}_peak_rss"),
            format!("{mb:.1}"),
            "MB",
        );
    }
    if big.is_some() {
        report(
            &format!("first_load_rss_growth_10k_to_{}", short(n)),
            format!("{:.2}", at.resync_peak_rss_mb / small.resync_peak_rss_mb),
            "x",
        );
        for ((function, big), (_, small)) in at
            .functions_peak_rss_mb
            .iter()
            .zip(&small.functions_peak_rss_mb)
        {
            let name = function.trim_end_matches("Function").to_lowercase();
            report(
                &format!("first_load_{name}_rss_growth_10k_to_{}", short(n)),
                format!("{:.2}", big / small),
                "x",
            );
        }
    }
    Ok(())
}

/// 100000 as `100k`.
fn short(n: usize) -> String {
    if n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}
