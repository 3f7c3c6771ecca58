//! `load` without `--dry-run`: drives the resync function's first load, one invocation per step
//! (the plan, then each chunk), with a progress bar over the load's steps (records read, pairs
//! linked, writes queued), and ends with a
//! summary of what the load did. Run again after an interruption, it goes on from the load's
//! last checkpoint; `--cancel` stops it.

use indicatif::{ProgressBar, ProgressStyle};
use resync::{LoadCommand, ResyncReport, ResyncRequest};
use serde::Serialize;
use shared::config::required;
use shared::domain::first_load::steps::{FirstLoad, FirstLoadState};
use shared::domain::System;

use crate::cli::Format;
use crate::env::Env;
use crate::invoke::invoke_once;
use crate::out::{print, Rows};

fn request(job: &str, command: LoadCommand, from: Option<System>) -> ResyncRequest {
    ResyncRequest {
        job: Some(job.to_string()),
        load: Some(command),
        from,
        ..ResyncRequest::default()
    }
}

/// Runs (or with `cancel`, stops) `job_name`'s first load in the resync function, written only
/// from `from` when given (a load in progress goes on as it was planned).
pub async fn run(
    env: &Env,
    job_name: &str,
    (from, cancel): (Option<System>, bool),
    format: Format,
) -> anyhow::Result<()> {
    let job = env.job(job_name)?;
    let function = required("RESYNC_FUNCTION")?;
    let client = aws_sdk_lambda::Client::new(&env.sdk);
    let command = if cancel {
        LoadCommand::Cancel
    } else {
        LoadCommand::Run
    };
    let bar = ProgressBar::new(0).with_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} steps ({per_sec}, about {eta} left) {msg}",
    )?);
    bar.enable_steady_tick(std::time::Duration::from_secs(1));
    bar.set_message("reading both systems and planning");
    let mut reports: Vec<ResyncReport> = Vec::new();
    let mut next = Some(request(&job.name, command, from));
    while let Some(asked) = next.take() {
        let report: ResyncReport = (invoke_once(&client, &function, &asked).await)
            .map_err(|e| match command {
                LoadCommand::Run => e.context(format!(
                    "the load stopped; run `syncctl load --job {}` again to go on from the last chunk applied",
                    job.name
                )),
                LoadCommand::Cancel => e,
            })?;
        if let Some(load) = &report.load {
            show(&bar, load);
        }
        next = report.continuation.clone();
        reports.push(report);
    }
    bar.finish_and_clear();
    let load = (reports.last().and_then(|r| r.load.clone()))
        .ok_or_else(|| anyhow::anyhow!("the resync function answered without the load"))?;
    summary(&load, &reports, format)
}

/// The bar at `load`'s checkpoint: records read, pairs linked and writes queued so far.
fn show(bar: &ProgressBar, load: &FirstLoad) {
    let p = load.progress();
    bar.set_length(load.steps as u64);
    bar.set_position(load.applied() as u64);
    bar.set_message(format!(
        "read {} + {}, linked {}/{}, queued {}/{} writes",
        load.read.gainsight, load.read.salesforce, p.linked, p.links, p.queued, p.writes
    ));
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    load: &'a FirstLoad,
    /// The run of each invocation (`syncctl logs <run>`): the plan's, then each chunk's.
    runs: Vec<String>,
    queued: usize,
}

fn summary(load: &FirstLoad, reports: &[ResyncReport], format: Format) -> anyhow::Result<()> {
    let queued = reports.iter().map(|r| r.queued).sum();
    let c = &load.counts;
    let mut rows = Rows::new(&["first load", "records"]);
    for (what, n) in [
        ("Gainsight records read", load.read.gainsight),
        ("Salesforce records read", load.read.salesforce),
        ("already linked in the ledger", c.already_linked),
        ("linked by an identifier", c.link_by_identifier),
        ("linked by a match key", c.link_by_match_key),
        ("to create in Salesforce", c.create_in_salesforce),
        ("to create in Gainsight", c.create_in_gainsight),
        ("pairs to update", c.to_update),
        ("refused by validation, not written", c.refused),
        ("ambiguous, left alone", c.ambiguous),
        ("no twin, left alone", c.no_twin),
        ("steps applied by this command", queued),
    ] {
        rows.push(vec![what.to_string(), n.to_string()]);
    }
    if format == Format::Table {
        let state = match load.state {
            FirstLoadState::Applying => "in progress",
            FirstLoadState::Done => "done",
            FirstLoadState::Cancelled => "cancelled",
        };
        let from = match load.from {
            Some(side) => format!(", written from {} only", side.label()),
            None => String::new(),
        };
        say!(
            "{}: first load {} {state}, {} of {} chunks applied{from}",
            load.job,
            load.run,
            load.done,
            load.chunks
        )?;
    }
    let runs = reports.iter().map(|r| r.run.to_string()).collect();
    print(format, &rows, &Summary { load, runs, queued })?;
    if format == Format::Table {
        say!(
            "the writes are queued as changes for the mapper and pusher; follow them with `syncctl runs --last 1h`; ambiguous records are listed by `syncctl logs {}`",
            load.run
        )?;
    }
    Ok(())
}
