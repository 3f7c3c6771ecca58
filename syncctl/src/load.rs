//! `load --dry-run`: the plan of a job's first load, written nowhere, read as the load reads
//! (`shared::snapshot`: Salesforce through one Bulk API 2.0 query job, Gainsight page by page, the
//! job's ledger for the pairs it has). The plan (`domain::first_load`) says what is already linked, what would be linked and
//! why, what would be created on each side, which pairs would be updated and with which values,
//! which writes the target would refuse (checked against its describe) and why, and which
//! records are ambiguous and left alone.

mod run;

use std::io::Write;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::Value;
use shared::domain::first_load::{self, Action, Counts, LinkedBy, PlanRow, PlanRows, Snapshot};
use shared::domain::{Job, System};
use shared::snapshot;

use crate::cli::Format;
use crate::env::Env;
use crate::out::{print, Rows};

pub use run::run;

/// One row of the plan, as printed and written to CSV.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    gainsight_id: String,
    salesforce_id: String,
    action: &'static str,
    detail: String,
    updates: String,
}

/// Plans the first load of `job_name`, written only from `from` when given; `csv` gets every
/// row of the plan.
pub async fn dry_run(
    env: &Env,
    job_name: &str,
    (from, csv): (Option<System>, Option<&Path>),
    format: Format,
) -> anyhow::Result<()> {
    let job = env.job(job_name)?;
    let snapshot = read_snapshot(env, job).await?;
    let read = (snapshot.gainsight.len(), snapshot.salesforce.len());
    let (plan, _) = first_load::plan_keeping_rows(job, &snapshot, from);
    drop(snapshot);
    if let Some(path) = csv {
        let file = std::fs::File::create(path)
            .map_err(|e| anyhow::anyhow!("cannot write the plan to {}: {e}", path.display()))?;
        write_csv(file, &plan)?;
    }
    report(job, read, &first_load::counts(plan.iter()), &plan, format)
}

/// Every row of the plan as CSV, a row at a time (a million rows are never all in memory).
fn write_csv(out: impl std::io::Write, plan: &PlanRows) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(out));
    writer.write_record(HEADERS)?;
    for row in plan.iter() {
        let cells = cells(&line(&row));
        writer.write_record(cells.iter().map(|c| crate::out::csv_cell(c).into_owned()))?;
    }
    writer.flush()?;
    Ok(())
}

/// The plan's rows as a JSON list, made a row at a time as they are written.
struct Lines<'a>(&'a PlanRows);

impl Serialize for Lines<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|row| line(&row)))
    }
}

/// What both systems hold for `job`, and the pairs its ledger has, with a spinner meanwhile.
pub(crate) async fn read_snapshot(env: &Env, job: &Job) -> anyhow::Result<Snapshot> {
    let (sf, gs) = crate::diff::apis(env).await?;
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})")?);
    let store = env.store();
    let sources = snapshot::Sources {
        salesforce: &sf,
        salesforce_api: &sf,
        gainsight: &gs,
        ledger: &store,
    };
    let progress = |message: String| bar.set_message(message);
    let read = snapshot::read(job, sources, &progress).await?;
    bar.finish_and_clear();
    Ok(read)
}

/// A plan row as people read it.
fn line(row: &PlanRow) -> Line {
    let (action, detail) = match &row.action {
        Action::Pair(LinkedBy::Ledger) => ("already linked", String::new()),
        Action::Pair(LinkedBy::Identifier(by)) | Action::Pair(LinkedBy::MatchKey(by)) => {
            ("link", format!("by {by}"))
        }
        Action::CreateInSalesforce => ("create in Salesforce", String::new()),
        Action::CreateInGainsight => ("create in Gainsight", String::new()),
        Action::NoTwin(side) => (
            "left alone",
            format!("no twin, and the job does not create from {}", side.label()),
        ),
        Action::NotLoaded(side) => (
            "left alone",
            format!(
                "no twin, and this load writes only from {}",
                side.other().label()
            ),
        ),
        Action::Ambiguous { candidates, why } => {
            ("ambiguous", format!("{why}: {}", candidates.join(", ")))
        }
    };
    let show = |v: &Value| {
        if v.is_null() {
            "null".into()
        } else {
            v.to_string()
        }
    };
    let (action, detail) = with_refusal(row, (action, detail));
    let updates: Vec<String> = (row.updates.iter())
        .map(|u| {
            let side = u.target.label();
            format!("{side}.{}: {} -> {}", u.field, show(&u.was), show(&u.value))
        })
        .collect();
    Line {
        gainsight_id: row.gsid.clone().unwrap_or_default(),
        salesforce_id: row.salesforce_id.clone().unwrap_or_default(),
        action,
        detail,
        updates: updates.join("; "),
    }
}

/// The row's action and detail as shown once its refusal, if any, is said: a refused creation
/// is `refused by validation`; a refused pair stays linked, its update said refused.
fn with_refusal(row: &PlanRow, (action, detail): (&'static str, String)) -> (&'static str, String) {
    let creates = |side: &str| format!("would create it in {side}");
    match (&row.refused, &row.action) {
        (Some(why), Action::CreateInSalesforce) => (
            "refused by validation",
            format!("{}: {why}", creates("Salesforce")),
        ),
        (Some(why), Action::CreateInGainsight) => (
            "refused by validation",
            format!("{}: {why}", creates("Gainsight")),
        ),
        (Some(why), _) => {
            let refused = format!("its update is refused by validation: {why}");
            let detail = [detail, refused].into_iter().filter(|d| !d.is_empty());
            (action, detail.collect::<Vec<_>>().join("; "))
        }
        (None, _) => (action, detail),
    }
}

/// The columns of the plan's CSV.
const HEADERS: [&str; 5] = [
    "gainsight id",
    "salesforce id",
    "action",
    "detail",
    "updates",
];

fn cells(l: &Line) -> Vec<String> {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        dash(&l.gainsight_id),
        dash(&l.salesforce_id),
        l.action.to_string(),
        dash(&l.detail),
        dash(&l.updates),
    ]
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    job: &'a str,
    dry_run: bool,
    read: Read,
    counts: CountsOut,
    rows: Lines<'a>,
}

#[derive(Serialize)]
struct Read {
    gainsight: usize,
    salesforce: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CountsOut {
    already_linked: usize,
    link_by_identifier: usize,
    link_by_match_key: usize,
    create_in_salesforce: usize,
    create_in_gainsight: usize,
    to_update: usize,
    refused_by_validation: usize,
    ambiguous: usize,
    left_alone: usize,
}

fn report(
    job: &Job,
    (gainsight, salesforce): (usize, usize),
    c: &Counts,
    plan: &PlanRows,
    format: Format,
) -> anyhow::Result<()> {
    if format == Format::Csv {
        return write_csv(std::io::stdout().lock(), plan);
    }
    let counts = CountsOut {
        already_linked: c.already_linked,
        link_by_identifier: c.link_by_identifier,
        link_by_match_key: c.link_by_match_key,
        create_in_salesforce: c.create_in_salesforce,
        create_in_gainsight: c.create_in_gainsight,
        to_update: c.to_update,
        refused_by_validation: c.refused,
        ambiguous: c.ambiguous,
        left_alone: c.no_twin,
    };
    let mut rows = Rows::new(&["plan", "records"]);
    for (what, n) in [
        ("already linked in the ledger", counts.already_linked),
        ("to link by an identifier", counts.link_by_identifier),
        ("to link by a match key", counts.link_by_match_key),
        ("to create in Salesforce", counts.create_in_salesforce),
        ("to create in Gainsight", counts.create_in_gainsight),
        ("pairs to update", counts.to_update),
        (
            "refused by validation, not written",
            counts.refused_by_validation,
        ),
        ("ambiguous, left alone", counts.ambiguous),
        ("no twin, left alone", counts.left_alone),
    ] {
        rows.push(vec![what.to_string(), n.to_string()]);
    }
    if format == Format::Table {
        say!(
            "{}: dry run, nothing written; read {gainsight} {} and {salesforce} {} records",
            job.name,
            job.gainsight.object,
            job.salesforce.object
        )?;
    }
    let summary = Summary {
        job: &job.name,
        dry_run: true,
        read: Read {
            gainsight,
            salesforce,
        },
        counts,
        rows: Lines(plan),
    };
    if format == Format::Json {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
        return Ok(out.flush()?);
    }
    print(format, &rows, &summary)
}
