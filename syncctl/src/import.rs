//! `import`: links pairs whose Salesforce ids an operator already knows. The whole file is checked
//! before anything is written, so a bad row never leaves half an import behind, and a row that
//! would replace a link already in the ledger is refused unless the operator says `--relink`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use futures_util::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use shared::domain::change::is_salesforce_id;
use shared::domain::link::{relinks, Relink};
use shared::domain::{Job, LedgerKey, LedgerUpdate};
use shared::ports::{record_links, LedgerStore, LedgerWrite};

use crate::env::{usage, Env};

/// Columns the file may have.
const COLUMNS: [&str; 5] = [
    "gainsight_id",
    "salesforce_id",
    "salesforce_contact_id",
    "salesforce_lead_id",
    "salesforce_account_id",
];
/// Rows written per request (one DynamoDB transaction), and ledger records read per request.
const CHUNK: usize = 100;
/// Index reads (which record holds a Salesforce id) in flight at once.
const INDEX_READS: usize = 16;

/// One checked row: the pair to link.
#[derive(Debug, PartialEq)]
pub struct Link {
    pub line: u64,
    pub gainsight_id: String,
    pub salesforce_id: String,
}

/// The links in `text`, or every problem found, each with its line number.
pub fn check(text: &str, job: &Job) -> Result<Vec<Link>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![format!("line 1: cannot read the header: {e}")]),
    };
    let mut problems = header_problems(&headers);
    if !problems.is_empty() {
        return Err(problems);
    }
    let column = |name: &str| headers.iter().position(|h| h == name);
    let object_column = match job.salesforce.object.as_str() {
        "Contact" => column("salesforce_contact_id"),
        "Lead" => column("salesforce_lead_id"),
        "Account" => column("salesforce_account_id"),
        _ => None,
    };
    let (gs_col, sf_col) = (column("gainsight_id"), column("salesforce_id"));
    let mut links = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for row in reader.records() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let line = row.position().map(|p| p.line()).unwrap_or(0);
        let cell = |c: Option<usize>| c.and_then(|i| row.get(i)).unwrap_or("").to_string();
        let gainsight_id = cell(gs_col);
        let salesforce_id = Some(cell(sf_col))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| cell(object_column));
        match row_problem(&gainsight_id, &salesforce_id, job, &mut seen, line) {
            Some(p) => problems.push(format!("line {line}: {p}")),
            None => links.push(Link {
                line,
                gainsight_id,
                salesforce_id,
            }),
        }
    }
    if links.is_empty() && problems.is_empty() {
        problems.push("the file has a header but no rows".into());
    }
    if problems.is_empty() {
        Ok(links)
    } else {
        Err(problems)
    }
}

fn header_problems(headers: &csv::StringRecord) -> Vec<String> {
    let mut problems = Vec::new();
    for h in headers {
        if !COLUMNS.contains(&h) {
            problems.push(format!(
                "line 1: unknown column {h:?}; the columns are {}",
                COLUMNS.join(", ")
            ));
        }
    }
    if !headers.iter().any(|h| h == "gainsight_id") {
        problems.push("line 1: the gainsight_id column is missing".into());
    }
    if !headers.iter().any(|h| h.starts_with("salesforce_")) {
        problems.push("line 1: no Salesforce id column (salesforce_id, or the object's)".into());
    }
    problems
}

/// What is wrong with one row, if anything.
fn row_problem(
    gainsight_id: &str,
    salesforce_id: &str,
    job: &Job,
    seen: &mut HashMap<String, u64>,
    line: u64,
) -> Option<String> {
    if gainsight_id.is_empty() {
        return Some("gainsight_id is empty".into());
    }
    if salesforce_id.is_empty() {
        return Some(format!(
            "no Salesforce id for {gainsight_id} (salesforce_id, or the {} column)",
            job.salesforce.object
        ));
    }
    if !is_salesforce_id(salesforce_id) {
        return Some(format!(
            "{salesforce_id:?} is not a Salesforce id (15 or 18 letters and digits)"
        ));
    }
    for id in [gainsight_id, salesforce_id] {
        if let Some(first) = seen.insert(id.to_string(), line) {
            return Some(format!("{id} is also on line {first}"));
        }
    }
    None
}

fn read_file(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    }
    Ok(text)
}

/// What `links` would replace in `job`'s ledger, each with its row: the Gainsight records linked
/// to other Salesforce records, and the Salesforce records linked to other Gainsight records.
async fn replaced<'a>(
    store: &dyn LedgerStore,
    job: &Job,
    links: &'a [Link],
) -> anyhow::Result<Vec<(&'a Link, Relink)>> {
    let mut by_gsid = HashMap::new();
    for chunk in links.chunks(CHUNK) {
        let keys: Vec<LedgerKey> = (chunk.iter())
            .map(|l| LedgerKey::Gainsight(l.gainsight_id.clone()))
            .collect();
        for record in store.ledgers(&job.name, &keys).await? {
            by_gsid.insert(record.key.clone(), record);
        }
    }
    let holders: Vec<Option<LedgerKey>> = futures_util::stream::iter(links)
        .map(|l| store.key_of_salesforce_id(&job.name, &l.salesforce_id))
        .buffered(INDEX_READS)
        .try_collect()
        .await?;
    let mut found = Vec::new();
    for (link, holder) in links.iter().zip(holders) {
        let key = LedgerKey::Gainsight(link.gainsight_id.clone());
        let pair = (link.gainsight_id.as_str(), link.salesforce_id.as_str());
        for relink in relinks(pair, by_gsid.get(&key), holder.as_ref()) {
            found.push((link, relink));
        }
    }
    Ok(found)
}

/// The ledger writes of an import: first the records whose Salesforce twin the file gives to
/// another Gainsight record are unlinked, then every row is linked.
fn import_writes(
    job: &Job,
    links: &[Link],
    relinked: &[(&Link, Relink)],
    origin: &str,
) -> Vec<LedgerWrite> {
    let unlinks = relinked.iter().filter_map(|(link, relink)| match relink {
        Relink::SalesforceLinked { linked_to, .. } => {
            let update = LedgerUpdate::Unlinked {
                salesforce_id: link.salesforce_id.clone(),
                now_linked_to: link.gainsight_id.clone(),
                origin: origin.to_string(),
            };
            let key = LedgerKey::Gainsight(linked_to.clone());
            Some(LedgerWrite::new(&job.name, key, update, ""))
        }
        Relink::GainsightLinked { .. } => None,
    });
    let imports = links.iter().map(|l| {
        let update = LedgerUpdate::Imported {
            salesforce_id: l.salesforce_id.clone(),
            origin: origin.to_string(),
        };
        let key = LedgerKey::Gainsight(l.gainsight_id.clone());
        LedgerWrite::new(&job.name, key, update, "")
    });
    unlinks.chain(imports).collect()
}

/// The refusal of an import whose rows would replace links, every such row listed.
fn relink_refusal(path: &Path, relinked: &[(&Link, Relink)]) -> anyhow::Error {
    let rows: Vec<String> = (relinked.iter())
        .map(|(link, r)| {
            let to = match r {
                Relink::GainsightLinked { .. } => &link.salesforce_id,
                Relink::SalesforceLinked { .. } => &link.gainsight_id,
            };
            format!("line {}: {}", link.line, r.describe(to))
        })
        .collect();
    usage(format!(
        "{}: nothing imported; {} rows would replace a link already in the ledger:\n  {}\ncheck them, then run again with --relink to replace these links (a record whose twin moves to another is unlinked)",
        path.display(),
        rows.len(),
        rows.join("\n  ")
    ))
}

/// Imports the links of the file at `path` into `job_name`; `relink` lets a row replace a link
/// already in the ledger; `resync` resyncs the linked records afterwards.
pub async fn import(
    env: &Env,
    path: &Path,
    job_name: &str,
    (relink, resync): (bool, bool),
) -> anyhow::Result<()> {
    let job = env.job(job_name)?;
    let text = read_file(path)?;
    let links = check(&text, job).map_err(|problems| {
        usage(format!(
            "{}: nothing imported; fix these rows and run again:\n  {}",
            path.display(),
            problems.join("\n  ")
        ))
    })?;
    let store = env.store();
    let relinked = replaced(&store, job, &links).await?;
    if !relinked.is_empty() && !relink {
        return Err(relink_refusal(path, &relinked));
    }
    let origin = format!("the import of {}", path.display());
    let writes = import_writes(job, &links, &relinked, &origin);
    let bar = ProgressBar::new(writes.len() as u64).with_style(ProgressStyle::with_template(
        "importing {bar:40} {pos}/{len} ledger writes",
    )?);
    for chunk in writes.chunks(CHUNK) {
        record_links(&store, chunk, shared::time::now_ms()).await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    say!(
        "imported {} links into {} ({} replacing a link): the next sync of each record updates its Salesforce {} by Id",
        links.len(),
        job.name,
        relinked.len(),
        job.salesforce.object
    )?;
    if resync {
        teach_gsids(env, job, &links).await?;
    }
    Ok(())
}

/// Resyncs the linked records from Gainsight now, so each Salesforce record is updated by its Id
/// and learns its GSID: a change made in Salesforce before the next Gainsight edit then finds its
/// pair by GSID instead of looking like a new record.
async fn teach_gsids(env: &Env, job: &Job, links: &[Link]) -> anyhow::Result<()> {
    let request = resync::ResyncRequest {
        job: Some(job.name.clone()),
        ids: Some(links.iter().map(|l| l.gainsight_id.clone()).collect()),
        ..Default::default()
    };
    let reports = crate::invoke::resync_all(env, request).await?;
    let queued: usize = reports.iter().map(|r| r.queued).sum();
    let runs: Vec<String> = reports.iter().map(|r| r.run.to_string()).collect();
    say!(
        "resync: {queued} linked records queued so each Salesforce {} learns its GSID (run {})",
        job.salesforce.object,
        runs.join(", ")
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Jobs;

    fn job(jobs: &Jobs, name: &str) -> Job {
        jobs.named(name).unwrap().clone()
    }

    #[test]
    fn good_rows_become_links() {
        let jobs = Jobs::builtin();
        let text = "gainsight_id,salesforce_id\nG1,001000000000001AAA\nG2,001000000000002\n";
        let links = check(text, &job(&jobs, "company_account")).unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[1].line, 3);
        // A Person's Salesforce id may come from the contact column.
        let people = "gainsight_id,salesforce_id,salesforce_contact_id\nP1,,003000000000001AAA\n";
        let links = check(people, &job(&jobs, "person_contact")).unwrap();
        assert_eq!(links[0].salesforce_id, "003000000000001AAA");
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let jobs = Jobs::builtin();
        let text = "gainsight_id,salesforce_id\nG1,001000000000001AAA\n,001000000000002AAA\nG3,not-an-id\nG1,001000000000004AAA\n";
        let problems = check(text, &job(&jobs, "company_account")).unwrap_err();
        assert_eq!(
            problems,
            [
                "line 3: gainsight_id is empty",
                "line 4: \"not-an-id\" is not a Salesforce id (15 or 18 letters and digits)",
                "line 5: G1 is also on line 2",
            ]
        );
        let header = check("gsid,sfid\nA,B\n", &job(&jobs, "company_account")).unwrap_err();
        assert!(header[0].contains("unknown column \"gsid\""), "{header:?}");
    }

    /// Fuzzed imports (`FUZZ_SECONDS`): any text is either links whose ids are well formed and
    /// unique, or problems that each say where; never a panic.
    #[test]
    fn fuzzed_files_are_links_or_problems_that_say_where() {
        let jobs = Jobs::builtin();
        let seeds = vec![
            "gainsight_id,salesforce_id\nG1,001000000000001AAA\nG2,001000000000002\n".to_string(),
            "gainsight_id,salesforce_id,salesforce_contact_id\nP1,,003000000000001AAA\nP2,003000000000002AAA,\n".to_string(),
            "gainsight_id,salesforce_account_id\n\"G,1\",001000000000001AAA\n".to_string(),
        ];
        let names = ["company_account", "person_contact"];
        let accepted = std::sync::atomic::AtomicU64::new(0);
        let cases = shared::fuzz::run(
            "import_csv",
            (
                shared::fuzz::mutated(seeds),
                proptest::sample::select(names.to_vec()),
            ),
            |(text, name)| match check(text, &job(&jobs, name)) {
                Ok(links) => {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let mut ids = std::collections::HashSet::new();
                    for l in &links {
                        if l.gainsight_id.is_empty() || !is_salesforce_id(&l.salesforce_id) {
                            return Err(format!("a bad link was accepted: {l:?}"));
                        }
                        if !ids.insert(l.gainsight_id.clone())
                            || !ids.insert(l.salesforce_id.clone())
                        {
                            return Err(format!("an id linked twice: {l:?}"));
                        }
                    }
                    Ok(())
                }
                Err(problems) if problems.is_empty() => Err("refused without a problem".into()),
                Err(problems) => match problems
                    .iter()
                    .find(|p| !(p.starts_with("line ") || p.starts_with("the file has a header")))
                {
                    Some(p) => Err(format!("a problem that does not say where: {p}")),
                    None => Ok(()),
                },
            },
        );
        let accepted = accepted.into_inner();
        println!("fuzz: import_csv accepted {accepted} of {cases}");
        assert!(
            accepted > 0,
            "no file was accepted: the links were never checked"
        );
    }
}
