//! `jobs plan FILE`: what a changed job file would write before it is deployed. The file's job is
//! checked as at deploy, then settled over the pairs the ledger links today (both records read
//! as they are now): per field, how many records the new mapping would write, and to which side,
//! and how many of those writes the target would refuse (checked against its describe).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use shared::domain::first_load::{self, Action, LinkedBy};
use shared::domain::{Jobs, System};

use crate::cli::Format;
use crate::env::{usage, Env};
use crate::out::{print, Rows};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FieldWrites {
    target: System,
    field: String,
    records: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Plan<'a> {
    job: &'a str,
    linked_pairs: usize,
    pairs_written: usize,
    /// Pairs whose writes the target would refuse, so not written.
    pairs_refused: usize,
    fields: Vec<FieldWrites>,
}

/// Plans the job in `path` over the pairs the ledger links today.
pub async fn plan(env: &Env, path: &Path, format: Format) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let job = Jobs::parse(path, &text).map_err(|e| usage(e.to_string()))?;
    let snapshot = crate::load::read_snapshot(env, &job).await?;
    let (rows, _) = first_load::plan_keeping_rows(&job, &snapshot, None);
    drop(snapshot);
    // Counted a row at a time from the plan's scratch file, as the dry run prints it.
    let (mut linked, mut written, mut refused) = (0, 0, 0);
    let mut by_field: BTreeMap<(System, String), usize> = BTreeMap::new();
    for row in rows.iter() {
        if row.action != Action::Pair(LinkedBy::Ledger) {
            continue;
        }
        linked += 1;
        refused += usize::from(row.refused.is_some());
        written += usize::from(!row.updates.is_empty() && row.refused.is_none());
        for u in row.updates {
            *by_field.entry((u.target, u.field)).or_default() += 1;
        }
    }
    let out = Plan {
        job: &job.name,
        linked_pairs: linked,
        pairs_written: written,
        pairs_refused: refused,
        fields: (by_field.into_iter())
            .map(|((target, field), records)| FieldWrites {
                target,
                field,
                records,
            })
            .collect(),
    };
    let mut table = Rows::new(&["written to", "field", "records"]);
    for f in &out.fields {
        table.push(vec![
            f.target.label().to_string(),
            f.field.clone(),
            f.records.to_string(),
        ]);
    }
    if format == Format::Table {
        say!(
            "{} ({}): of {} linked pairs, {} would be written when resynced or next changed, {} refused by the target's validation",
            out.job,
            path.display(),
            out.linked_pairs,
            out.pairs_written,
            out.pairs_refused
        )?;
        if out.fields.is_empty() {
            return Ok(());
        }
    }
    print(format, &table, &out)
}
