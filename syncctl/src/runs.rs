//! `runs` and `logs`: the execution activities and their per-record logs.

use shared::domain::{Run, RunId};
use shared::ports::RunStore;

use crate::cli::{Format, RunsArgs};
use crate::env::{not_found, parse_ago, parse_when, usage, Env};
use crate::out::{print, when, Rows};

/// The window `args` asks for (default: the last 24 hours).
pub fn window(args: &RunsArgs, now_ms: i64) -> anyhow::Result<(i64, i64)> {
    if let Some(last) = &args.last {
        let ago = parse_ago(last).ok_or_else(|| {
            usage(format!(
                "--last {last:?}: use a duration such as 90m, 24h, 3d or 7d"
            ))
        })?;
        return Ok((now_ms - ago, now_ms));
    }
    let to = match &args.to {
        Some(t) => parse_when(t, now_ms)?,
        None => now_ms,
    };
    let from = match &args.from {
        Some(t) => parse_when(t, now_ms)?,
        None => to - 86_400_000,
    };
    if from > to {
        return Err(usage("--from is after --to"));
    }
    Ok((from, to))
}

/// The runs table (newest first).
pub fn rows(runs: &[Run]) -> Rows {
    let mut rows = Rows::new(&[
        "run", "job", "event", "objects", "started", "ms", "status", "ok", "failed", "ignored",
    ]);
    for r in runs {
        let objects = match (&r.source_object, &r.destination_object) {
            (Some(s), Some(d)) => format!("{s} -> {d}"),
            (Some(s), None) => s.clone(),
            _ => "-".into(),
        };
        rows.push(vec![
            r.id.to_string(),
            r.job.clone().unwrap_or_else(|| "-".into()),
            r.event.clone(),
            objects,
            when(Some(r.started_at_ms)),
            r.ended_at_ms
                .map(|e| (e - r.started_at_ms).to_string())
                .unwrap_or_else(|| "-".into()),
            r.status.as_str().into(),
            r.succeeded.to_string(),
            r.failed.to_string(),
            r.ignored.to_string(),
        ]);
    }
    rows
}

pub async fn runs(env: &Env, args: &RunsArgs, format: Format) -> anyhow::Result<()> {
    if let Some(job) = &args.job {
        env.job(job)?;
    }
    let (from, to) = window(args, shared::time::now_ms())?;
    let mut runs = env.store().runs(from, to).await?;
    runs.retain(|r| {
        args.job.as_ref().is_none_or(|j| r.job.as_ref() == Some(j))
            && args.status.is_none_or(|s| r.status == s)
    });
    print(format, &rows(&runs), &runs)
}

pub async fn logs(env: &Env, run: &str) -> anyhow::Result<()> {
    let id: RunId = run
        .parse()
        .map_err(|e: shared::domain::run::BadRunId| usage(e.to_string()))?;
    let run = env.store().run(&id).await?.ok_or_else(|| {
        not_found(format!(
            "no run {id}: runs are kept RUN_TTL_DAYS days (30 by default); list them with `syncctl runs --last 7d`"
        ))
    })?;
    say!("{}", run.json_lines().trim_end())?;
    Ok(())
}
