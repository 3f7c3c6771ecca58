//! `status`, `show` and `export`: the ledger as operators read it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use shared::domain::{Job, LedgerKey, LedgerRecord, PresenceState, SyncStatus};
use shared::ports::LedgerStore;

use crate::cli::{Format, StatusArgs};
use crate::env::{not_found, parse_when, Env};
use crate::out::{print, when, Rows};

/// Ledger records read per request.
const PAGE: usize = 1_000;

/// Every ledger record of `job`, or those carrying `status`, page by page.
pub async fn records(
    store: &dyn LedgerStore,
    job: &Job,
    status: Option<SyncStatus>,
) -> anyhow::Result<Vec<LedgerRecord>> {
    let mut all: Vec<LedgerRecord> = Vec::new();
    loop {
        let after = all.last().map(|r| r.key.clone());
        let page = match status {
            Some(s) => store.by_status(&job.name, s, after.as_ref(), PAGE).await?,
            None => store.list(&job.name, after.as_ref(), PAGE).await?,
        };
        let n = page.len();
        all.extend(page);
        if n < PAGE {
            return Ok(all);
        }
    }
}

/// `synced`, `error`, both, or `-` (seen, never written: only ignored changes or an import).
pub fn status_text(r: &LedgerRecord) -> &'static str {
    match (r.synced, r.error) {
        (true, true) => "synced,error",
        (true, false) => "synced",
        (false, true) => "error",
        (false, false) => "-",
    }
}

/// The record's Salesforce Id: known once linked, or its key while Salesforce-only.
pub fn salesforce_id(r: &LedgerRecord) -> String {
    r.salesforce_id
        .as_deref()
        .or(r.key.salesforce_only_id())
        .unwrap_or("-")
        .to_string()
}

/// When the record last synced or failed (what `--since` filters on).
fn last_activity(r: &LedgerRecord) -> Option<i64> {
    r.last_sync_at_ms.max(r.last_error_at_ms)
}

#[derive(Serialize)]
struct StatusJson<'a> {
    counts: Vec<serde_json::Value>,
    /// Jobs paused by an operator or deactivated by refused credentials.
    stopped: Vec<crate::job_states::StoppedJob>,
    records: Vec<&'a LedgerRecord>,
}

pub async fn status(env: &Env, args: &StatusArgs, format: Format) -> anyhow::Result<()> {
    let since = match &args.since {
        Some(t) => Some(parse_when(t, shared::time::now_ms())?),
        None => None,
    };
    let store = env.store();
    let mut found = Vec::new();
    for job in env.jobs_or_all(args.job.as_deref())? {
        let mut rs = records(&store, job, args.status).await?;
        rs.retain(|r| since.is_none_or(|t| last_activity(r).is_some_and(|at| at >= t)));
        found.extend(rs);
    }
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for r in &found {
        *counts.entry((&r.job, status_text(r))).or_default() += 1;
    }
    let mut rows = Rows::new(&[
        "job",
        "gainsight id",
        "salesforce id",
        "status",
        "last sync",
        "last error",
    ])
    .wrapping_last();
    for r in &found {
        rows.push(vec![
            r.job.clone(),
            r.key.gainsight_id().unwrap_or("-").to_string(),
            salesforce_id(r),
            status_text(r).to_string(),
            when(r.last_sync_at_ms),
            // An error the record has since recovered from stays in `show`, not here.
            r.last_error.clone().filter(|_| r.error).unwrap_or_default(),
        ]);
    }
    let json = StatusJson {
        counts: counts
            .iter()
            .map(|((job, status), n)| json!({"job": job, "status": status, "records": n}))
            .collect(),
        stopped: crate::job_states::stopped(env, args.job.as_deref()).await?,
        records: found.iter().collect(),
    };
    if format == Format::Table {
        for p in &json.stopped {
            say!(
                "job {} {} since {} by {}: {}; {}",
                p.job,
                p.state.label().to_uppercase(),
                when(Some(p.since_ms)),
                p.by,
                p.why,
                p.next
            )?;
        }
        let mut summary = Rows::new(&["job", "status", "records"]);
        for ((job, status), n) in &counts {
            summary.push(vec![job.to_string(), status.to_string(), n.to_string()]);
        }
        say!("{}", summary.table())?;
    }
    print(format, &rows, &json)
}

/// The ledger records of `id` (a GSID or a Salesforce Id) in `jobs`.
async fn find(
    store: &dyn LedgerStore,
    jobs: &[&Job],
    id: &str,
) -> anyhow::Result<Vec<LedgerRecord>> {
    let mut found = Vec::new();
    for job in jobs {
        let by_key = [
            LedgerKey::Gainsight(id.to_string()),
            LedgerKey::SalesforceOnly(id.to_string()),
        ];
        let mut hits = store.ledgers(&job.name, &by_key).await?;
        if hits.is_empty() {
            hits.extend(store.by_salesforce_id(&job.name, id).await?);
        }
        found.extend(hits);
    }
    Ok(found)
}

/// One sentence: did it sync, and if not, why; and a side whose record is gone.
pub fn verdict(r: &LedgerRecord) -> String {
    let gone: Vec<String> = (r.presence.iter())
        .filter(|(_, p)| p.state != PresenceState::Restored)
        .map(|(side, p)| format!("its {} record was {}", side.label(), p.describe()))
        .collect();
    match gone.is_empty() {
        true => sync_verdict(r),
        false => format!(
            "{}; {} (deletes are not propagated)",
            sync_verdict(r),
            gone.join(", ")
        ),
    }
}

fn sync_verdict(r: &LedgerRecord) -> String {
    if let Some(waiting) = &r.waiting {
        return match r.synced {
            true => format!("synced before; its latest change is {waiting}"),
            false => format!("NOT SYNCED YET: {waiting}"),
        };
    }
    match (r.synced, r.error) {
        (true, true) => format!(
            "synced before, but the last attempt failed at {} (last error below)",
            when(r.last_error_at_ms)
        ),
        (false, true) => format!(
            "NOT SYNCED: the attempt at {} failed (last error below); fix the data at the source, or `syncctl resync`",
            when(r.last_error_at_ms)
        ),
        (true, false) => format!("synced, last at {}", when(r.last_sync_at_ms)),
        (false, false) => match &r.last_ignored_reason {
            Some(reason) => format!("never written: its changes were ignored ({reason})"),
            None => "never written yet (linked by import, or waiting in a queue)".into(),
        },
    }
}

pub async fn show(env: &Env, id: &str, job: Option<&str>, format: Format) -> anyhow::Result<()> {
    let jobs = env.jobs_or_all(job)?;
    let found = find(&env.store(), &jobs, id).await?;
    if found.is_empty() {
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        return Err(not_found(format!(
            "no ledger record of {} has the id {id}: it never reached the sync (check the Gainsight rule or the Outbound Message), or try `syncctl resync --job <job> --ids {id}`",
            names.join(", ")
        )));
    }
    if format == Format::Json {
        say!("{}", serde_json::to_string_pretty(&found)?)?;
        return Ok(());
    }
    for r in &found {
        show_one(r, format)?;
    }
    Ok(())
}

fn show_one(r: &LedgerRecord, format: Format) -> anyhow::Result<()> {
    let history = history_rows(r);
    if format == Format::Csv {
        return print(format, &history, &());
    }
    say!("{}", facts_rows(r).table())?;
    if r.fields.is_empty() {
        say!("values last written: none yet")?;
    } else {
        say!("values last written (hashes):\n{}", field_rows(r).table())?;
    }
    say!(
        "last outcomes, newest first (syncctl logs <run>):\n{}",
        history.table()
    )?;
    Ok(())
}

/// The record's ids, statuses, times and verdict.
fn facts_rows(r: &LedgerRecord) -> Rows {
    let mut facts = Rows::new(&["", ""]).wrapping_last();
    let pairs = [
        ("job", r.job.clone()),
        ("gainsight id", r.key.gainsight_id().unwrap_or("-").into()),
        ("salesforce id", salesforce_id(r)),
        ("status", status_text(r).into()),
        ("verdict", verdict(r)),
        ("last sync", when(r.last_sync_at_ms)),
        ("last error", r.last_error.clone().unwrap_or("-".into())),
        ("last error at", when(r.last_error_at_ms)),
        ("ignored changes", r.ignored_count.to_string()),
        ("version", r.version.to_string()),
    ];
    for (k, v) in pairs {
        facts.push(vec![k.into(), v]);
    }
    // Deletes are recorded, not propagated: say which side's record is gone (or back).
    for (side, presence) in &r.presence {
        let what = format!("in {}", side.label());
        facts.push(vec![what, presence.describe()]);
    }
    facts
}

/// What was last written of each mapped field: hashes per side, where from and when.
fn field_rows(r: &LedgerRecord) -> Rows {
    let mut fields = Rows::new(&[
        "field",
        "from",
        "changed at",
        "synced at",
        "hash in gainsight",
        "hash in salesforce",
    ]);
    for (name, f) in &r.fields {
        fields.push(vec![
            name.clone(),
            f.from.as_str().into(),
            when(Some(f.changed_at_ms)),
            when((f.synced_at_ms > 0).then_some(f.synced_at_ms)),
            format!("{:016x}", f.gainsight),
            format!("{:016x}", f.salesforce),
        ]);
    }
    fields
}

/// The last outcomes, newest first, each with its run.
fn history_rows(r: &LedgerRecord) -> Rows {
    let mut history = Rows::new(&["version", "at", "outcome", "run", "message"]).wrapping_last();
    for h in r.history.iter().rev() {
        history.push(vec![
            h.version.to_string(),
            when(Some(h.at_ms)),
            h.outcome.as_str().into(),
            h.run.clone(),
            h.message.clone().unwrap_or_default(),
        ]);
    }
    history
}

pub async fn export(env: &Env, job: Option<&str>, format: Format) -> anyhow::Result<()> {
    let store = env.store();
    let mut all = Vec::new();
    for j in env.jobs_or_all(job)? {
        all.extend(records(&store, j, None).await?);
    }
    // The first two columns are what `syncctl import` reads back.
    let mut rows = Rows::new(&[
        "gainsight_id",
        "salesforce_id",
        "job",
        "status",
        "last_sync_at",
        "last_error",
        "last_error_at",
        "ignored_count",
        "version",
    ]);
    for r in &all {
        rows.push(vec![
            r.key.gainsight_id().unwrap_or_default().to_string(),
            r.salesforce_id.clone().unwrap_or_default(),
            r.job.clone(),
            status_text(r).into(),
            when(r.last_sync_at_ms),
            r.last_error.clone().unwrap_or_default(),
            when(r.last_error_at_ms),
            r.ignored_count.to_string(),
            r.version.to_string(),
        ]);
    }
    print(format, &rows, &all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{LedgerKey, LedgerUpdate};

    #[test]
    fn a_waiting_record_says_what_it_waits_for() {
        let mut r = LedgerRecord::new("person_contact", LedgerKey::Gainsight("P1".into()));
        let waits = LedgerUpdate::Waiting {
            reason: "waiting for company_account the Salesforce Account where Gainsight_Company_Id__c = C1".into(),
        };
        r.apply(&waits, 1, "run");
        assert_eq!(
            verdict(&r),
            "NOT SYNCED YET: waiting for company_account the Salesforce Account where Gainsight_Company_Id__c = C1"
        );
    }

    #[test]
    fn a_record_deleted_on_one_side_says_so_with_who_and_when() {
        use shared::domain::{Presence, PresenceState, System};
        let mut r = LedgerRecord::new("company_account", LedgerKey::Gainsight("C1".into()));
        let deleted = LedgerUpdate::Presence {
            reason: "Account 001 was deleted in Salesforce".into(),
            side: System::Salesforce,
            presence: Presence {
                state: PresenceState::Deleted,
                at_ms: 1_764_979_200_000,
                by: Some("005U".into()),
            },
        };
        r.apply(&deleted, 1, "run");
        assert!(
            verdict(&r).contains("its Salesforce record was deleted at"),
            "{}",
            verdict(&r)
        );
        let table = facts_rows(&r).table();
        assert!(table.contains("in Salesforce"), "{table}");
        assert!(
            table.contains("deleted at 2025-12-06T00:00:00") && table.contains("by user 005U"),
            "{table}"
        );
    }
}
