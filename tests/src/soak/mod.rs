//! The soak: people change records in both systems at a steady rate while every fault switch is
//! on (throttling, outages, slow and lost answers, expired sessions, row locks, crashes between a
//! function's writes and its ack, duplicate deliveries); once the queues are quiet, every change
//! is checked against both systems and the ledger. A change is lost when its record's twin does
//! not show it and the ledger does not say it failed, duplicated when its record has more than
//! one twin, and an error when the ledger says the sync failed (visible to operators).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use devstack::chaos::FaultRates;
use devstack::event_source::DeliveryFaults;
use devstack::salesforce::SalesforceEmulator;
use serde_json::{json, Map, Value};

use crate::{Options, Stack};

mod people;

/// What to run: how many changes, how fast, and how hard the faults hit.
#[derive(Clone, Copy, Debug)]
pub struct Soak {
    pub changes: usize,
    pub per_second: u32,
    pub faults: bool,
    /// Children before their parents: Companies are loaded quietly and their creation reaches
    /// the webhook up to 60 s later, while Cases, People and activities are made on them at once
    /// (`SOAK_ORDER=children-first`).
    pub children_first: bool,
}

/// What the soak found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub changes: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub error: usize,
    /// Faults the emulators injected, every kind counted.
    pub faults: u64,
    /// The queues still held messages when the records were checked.
    pub unsettled: bool,
    /// Fault classes switched on that never happened.
    pub not_injected: Vec<String>,
    /// Examples of what was lost or duplicated, for the report.
    pub examples: Vec<String>,
}

impl Verdict {
    pub fn line(&self) -> String {
        let mut notes = Vec::new();
        if self.unsettled {
            notes.push("checked before the queues emptied".to_string());
        }
        if !self.not_injected.is_empty() {
            notes.push(format!("never injected: {}", self.not_injected.join(", ")));
        }
        format!(
            "soak: {} changes, {} lost, {} duplicated, {} error{}",
            self.changes,
            self.lost,
            self.duplicated,
            self.error,
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            }
        )
    }

    /// Whether the soak shows the sync whole: nothing lost, duplicated or in error, checked
    /// once the queues emptied, with every fault it switched on injected.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.error == 0
            && !self.unsettled
            && self.not_injected.is_empty()
    }
}

/// The fault rates of the soak: each kind on a few calls in a hundred.
pub fn fault_rates() -> FaultRates {
    FaultRates {
        throttled: 0.02,
        unavailable: 0.02,
        slow: 0.02,
        slow_ms: 300,
        lost_answer: 0.02,
        expired_session: 0.01,
        locked_rows: 0.02,
    }
}

/// The stack options of the soak.
pub fn options(soak: &Soak) -> Options {
    let delivery_faults = if soak.faults {
        DeliveryFaults {
            crash_after_handler: 0.02,
            duplicate: 0.02,
        }
    } else {
        DeliveryFaults::default()
    };
    Options {
        delivery_faults,
        // Children first, some parents' writes meet a spent API budget: they wait 15 minutes
        // deployed, 15 s here (a clock 60 times faster).
        deferral: soak.children_first.then_some(BUDGET_DEFERRAL),
        ..Options::default()
    }
}

/// How long a write deferred by the spent API budget waits in the children-first soak.
const BUDGET_DEFERRAL: Duration = Duration::from_secs(15);

/// The Salesforce org's daily API allowance spent (as other integrations would) for 10 s in
/// every 40, from 20 s on, until stopped: each pusher batch that writes to Salesforce meanwhile
/// finds the budget spent and defers its writes.
struct BudgetWindows {
    salesforce: SalesforceEmulator,
    spent: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl BudgetWindows {
    fn start(salesforce: SalesforceEmulator) -> Self {
        let spent = Arc::new(AtomicU32::new(0));
        let (org, count) = (salesforce.clone(), Arc::clone(&spent));
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            loop {
                org.set_api_usage(devstack::salesforce::DAILY_LIMIT * 9 / 10);
                count.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(10)).await;
                org.set_api_usage(0);
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        });
        Self {
            salesforce,
            spent,
            task,
        }
    }

    /// Stops the windows and gives the org its allowance back; how many times it was spent.
    async fn stop(self) -> u32 {
        self.task.abort();
        let _ = self.task.await;
        self.salesforce.set_api_usage(0);
        self.spent.load(Ordering::Relaxed)
    }
}

/// What the people did, and so what each record's twin must show.
#[derive(Default)]
struct Expected {
    /// Companies made in Gainsight: GSID -> (Name, Arr) last set.
    companies: HashMap<String, (String, i64)>,
    /// Accounts made in Salesforce: Id -> Phone last set.
    accounts: HashMap<String, String>,
    /// People made in Gainsight: GSID -> (Email, LastName).
    people: HashMap<String, (String, String, Option<String>)>,
    /// Cases made in Gainsight: GSID -> (Subject, the GSID of its Company).
    gainsight_cases: HashMap<String, (String, Option<String>)>,
    /// Cases made in Salesforce: Id -> (Subject, Priority) last set.
    salesforce_cases: HashMap<String, (String, String)>,
    /// Timeline activities made in Gainsight: GSID -> (Subject, the Salesforce object it becomes).
    activities: HashMap<String, (String, &'static str)>,
    changes: usize,
}

/// Runs the soak on a fresh stack and checks every change.
pub async fn run(soak: Soak) -> Result<(Verdict, String)> {
    let stack = Stack::start(options(&soak)).await?;
    if soak.faults {
        stack.salesforce.set_fault_rates(fault_rates());
        stack.gainsight.set_fault_rates(fault_rates());
    }
    let started = Instant::now();
    let mut expected = Expected::default();
    let budget = soak
        .children_first
        .then(|| BudgetWindows::start(stack.salesforce.clone()));
    let acted = people::act(&stack, &mut expected, soak).await;
    let budget_spent = match budget {
        Some(windows) => Some(windows.stop().await),
        None => None,
    };
    let started_in = acted?;
    eprintln!(
        "soak: {} changes made in {:.1} s; waiting for the queues to settle",
        expected.changes,
        started.elapsed().as_secs_f64()
    );
    let made_in = started.elapsed();
    let unsettled = settle(&stack).await?;
    stack.salesforce.set_fault_rates(FaultRates::default());
    stack.gainsight.set_fault_rates(FaultRates::default());
    let mut verdict = check(&stack, &expected).await?;
    if soak.faults {
        verdict.not_injected = not_injected(&stack, budget_spent);
    }
    if let Some(held) = unsettled {
        verdict.unsettled = true;
        (verdict.examples).insert(0, format!("the queues never emptied: {held}"));
    }
    verdict.faults =
        stack.salesforce.fault_counts().total() + stack.gainsight.fault_counts().total();
    let outbound = stack.salesforce.stats();
    let budget = budget_spent.map_or(String::new(), |n| {
        format!(
            "; API budget spent {n} times for 10 s (writes deferred {} s), /limits asked {} times",
            BUDGET_DEFERRAL.as_secs(),
            outbound.limits_calls
        )
    });
    let report = format!(
        "started {} changes in {:.1} s ({:.1} a second), the last made after {:.1} s; settled after {:.1} s; Salesforce faults {:?}; Gainsight faults {:?}; deliveries {:?}; Outbound Messages acked {}, failed attempts {}, dropped {}{budget}",
        expected.changes,
        started_in.as_secs_f64(),
        expected.changes as f64 / started_in.as_secs_f64().max(0.001),
        made_in.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        stack.salesforce.fault_counts(),
        stack.gainsight.fault_counts(),
        stack.delivery_faults_injected(),
        outbound.outbound_acked,
        outbound.outbound_failures,
        outbound.outbound_given_up,
    );
    stack.stop().await;
    Ok((verdict, report))
}

/// The fault classes the soak switched on that never happened: a soak that injected none of a
/// kind says nothing of how the sync survives it.
fn not_injected(stack: &Stack, budget_spent: Option<u32>) -> Vec<String> {
    let (sf, gs) = (
        stack.salesforce.fault_counts(),
        stack.gainsight.fault_counts(),
    );
    let deliveries = stack.delivery_faults_injected();
    let mut classes = vec![
        ("Salesforce throttled", sf.throttled),
        ("Salesforce unavailable", sf.unavailable),
        ("Salesforce slow", sf.slow),
        ("Salesforce lost answer", sf.lost_answers),
        ("Salesforce expired session", sf.expired_sessions),
        ("Salesforce locked rows", sf.locked_rows),
        ("Gainsight throttled", gs.throttled),
        ("Gainsight unavailable", gs.unavailable),
        ("Gainsight slow", gs.slow),
        ("Gainsight lost answer", gs.lost_answers),
        ("crash between the writes and the ack", deliveries.crashes),
        ("duplicate delivery", deliveries.duplicates),
    ];
    if let Some(spent) = budget_spent {
        classes.push(("API budget spent", u64::from(spent)));
        // The pusher asks /limits only when the usage it last saw was over its budget.
        classes.push((
            "writes meeting the spent budget",
            stack.salesforce.stats().limits_calls,
        ));
    }
    classes
        .into_iter()
        .filter(|(_, n)| *n == 0)
        .map(|(class, _)| class.to_string())
        .collect()
}

/// Waits until both queues have been empty for a while (retries, deferrals and redeliveries
/// come back within seconds on the local stack), saying every minute what they hold; what they
/// still held after 15 minutes, if they never emptied.
async fn settle(stack: &Stack) -> Result<Option<String>> {
    let mut quiet_since: Option<Instant> = None;
    let started = Instant::now();
    let mut said_at = started;
    while started.elapsed() < Duration::from_secs(900) {
        let held = held(stack).await?;
        match (held.is_empty(), quiet_since) {
            (true, Some(t)) if t.elapsed() > Duration::from_secs(10) => return Ok(None),
            (true, None) => quiet_since = Some(Instant::now()),
            (true, Some(_)) => {}
            (false, _) => quiet_since = None,
        }
        if said_at.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "soak: after {:.0} s the queues hold {}",
                started.elapsed().as_secs_f64(),
                if held.is_empty() { "nothing" } else { &held }
            );
            said_at = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Some(held(stack).await?))
}

/// What the two queues hold, by state; empty when they hold nothing.
async fn held(stack: &Stack) -> Result<String> {
    let mut parts = Vec::new();
    for queue in ["ChangesQueue", "WritesQueue"] {
        let d = stack.aws.queue_depths(queue).await?;
        if d.visible + d.in_flight + d.delayed > 0 {
            parts.push(format!(
                "{queue}: {} to receive, {} in flight, {} delayed",
                d.visible, d.in_flight, d.delayed
            ));
        }
    }
    Ok(parts.join("; "))
}

/// Checks every record the people made against its twin and the ledger.
async fn check(stack: &Stack, expected: &Expected) -> Result<Verdict> {
    let mut v = Verdict {
        changes: expected.changes,
        ..Verdict::default()
    };
    let ledgers = stack.ledger_records().await?;
    v.error = ledgers.iter().filter(|l| l.error).count();
    v.examples.extend(ledger_examples(&ledgers));
    let by_key: HashMap<String, &crate::LedgerRecord> =
        ledgers.iter().map(|l| (l.key.to_string(), l)).collect();
    // Each system's records read once and indexed by the field that names the twin.
    let accounts = index(
        stack.salesforce.records("Account"),
        "Gainsight_Company_Id__c",
    );
    let companies = index(stack.gainsight.records("Company"), "SfdcAccountId");
    for (gsid, (name, arr)) in &expected.companies {
        let shows = |t: &Map<String, Value>| {
            t.get("Name") == Some(&json!(name))
                && t.get("AnnualRevenue").and_then(Value::as_f64) == Some(*arr as f64)
        };
        let what = format!("Company {gsid} ({name}, {arr})");
        judge(
            &mut v,
            what,
            accounts.get(gsid),
            by_key.get(gsid).copied(),
            shows,
        );
    }
    let by_salesforce_id: HashMap<&str, String> = ledgers
        .iter()
        .filter(|l| l.job == "company_account")
        .filter_map(|l| Some((l.salesforce_id.as_deref()?, l.key.to_string())))
        .collect();
    for (id, phone) in &expected.accounts {
        let shows = |t: &Map<String, Value>| t.get("Phone") == Some(&json!(phone));
        let key = by_salesforce_id
            .get(id.as_str())
            .cloned()
            .unwrap_or_else(|| format!("sf:{id}"));
        let ledger = by_key.get(&key).copied();
        judge(
            &mut v,
            format!("Account {id} ({phone})"),
            companies.get(id),
            ledger,
            shows,
        );
    }
    let account_of: HashMap<String, Value> = accounts
        .iter()
        .filter_map(|(gsid, twins)| Some((gsid.clone(), twins.first()?.get("Id")?.clone())))
        .collect();
    check_people(stack, expected, &ledgers, &mut v);
    check_cases(stack, expected, (&ledgers, &account_of), &mut v);
    check_activities(stack, expected, &ledgers, &mut v);
    Ok(v)
}

/// What the ledger says beyond the twins: the errors by job and the first three, and the changes
/// still parked once the queues settled (their parent never synced, or its sync did not replay
/// them; the poller's re-check would, minutes later).
fn ledger_examples(ledgers: &[crate::LedgerRecord]) -> Vec<String> {
    let mut examples = Vec::new();
    let mut by_job: std::collections::BTreeMap<&str, usize> = Default::default();
    for l in ledgers.iter().filter(|l| l.error) {
        *by_job.entry(l.job.as_str()).or_default() += 1;
    }
    if !by_job.is_empty() {
        examples.push(format!("errors by job: {by_job:?}"));
    }
    let waiting: Vec<String> = (ledgers.iter().filter(|l| l.waiting.is_some()))
        .map(|l| format!("{} {}", l.job, l.key))
        .collect();
    if !waiting.is_empty() {
        let first: Vec<&str> = waiting.iter().take(10).map(String::as_str).collect();
        examples.push(format!(
            "still waiting: {} ({})",
            waiting.len(),
            first.join(", ")
        ));
    }
    for l in ledgers.iter().filter(|l| l.error).take(3) {
        examples.push(format!("error {} {}: {:?}", l.job, l.key, l.last_error));
    }
    examples
}

/// Each Person against its Contact (by its GSID there).
fn check_people(
    stack: &Stack,
    expected: &Expected,
    ledgers: &[crate::LedgerRecord],
    v: &mut Verdict,
) {
    let by_key = of_job(ledgers, "person_contact");
    let companies = of_job(ledgers, "company_account");
    let contacts = index(
        stack.salesforce.records("Contact"),
        "Gainsight_Person_Id__c",
    );
    for (gsid, (email, last, company)) in &expected.people {
        let shows = |t: &Map<String, Value>| {
            t.get("Email") == Some(&json!(email)) && t.get("LastName") == Some(&json!(last))
        };
        let ledger = by_key.get(gsid.as_str()).copied();
        let parent = parent_note(&companies, company.as_deref());
        judge(
            v,
            format!("Person {gsid}{parent}"),
            contacts.get(gsid),
            ledger,
            shows,
        );
    }
}

/// Each Case against its twin: a Gainsight Case's Salesforce Case (by its GSID there), a
/// Salesforce Case's Gainsight Case (by its Salesforce Id there).
fn check_cases(
    stack: &Stack,
    expected: &Expected,
    (ledgers, account_of): (&[crate::LedgerRecord], &HashMap<String, Value>),
    v: &mut Verdict,
) {
    let by_key = of_job(ledgers, "case_case");
    let companies = of_job(ledgers, "company_account");
    let salesforce = index(stack.salesforce.records("Case"), "Gainsight_Case_Id__c");
    for (gsid, (subject, company)) in &expected.gainsight_cases {
        // A Case on a Company is linked to that Company's Account, however late it came.
        let account = company.as_ref().and_then(|c| account_of.get(c));
        let shows = |t: &Map<String, Value>| {
            t.get("Subject") == Some(&json!(subject))
                && (company.is_none() || t.get("AccountId") == account)
        };
        let ledger = by_key.get(gsid.as_str()).copied();
        let parent = parent_note(&companies, company.as_deref());
        let what = format!("Gainsight Case {gsid} ({subject}){parent}");
        judge(v, what, salesforce.get(gsid), ledger, shows);
    }
    let gainsight = index(stack.gainsight.records("Case"), "SfdcCaseId");
    let by_salesforce_id: HashMap<&str, &crate::LedgerRecord> = by_key
        .values()
        .filter_map(|l| Some((l.salesforce_id.as_deref()?, *l)))
        .collect();
    for (id, (subject, priority)) in &expected.salesforce_cases {
        let shows = |t: &Map<String, Value>| {
            t.get("Subject") == Some(&json!(subject)) && t.get("Priority") == Some(&json!(priority))
        };
        let ledger = by_salesforce_id
            .get(id.as_str())
            .or_else(|| by_key.get(&format!("sf:{id}")))
            .copied();
        let what = format!("Salesforce Case {id} ({subject}, {priority})");
        judge(v, what, gainsight.get(id), ledger, shows);
    }
}

/// Each Timeline activity against its Task or Event (by the activity's GSID there).
fn check_activities(
    stack: &Stack,
    expected: &Expected,
    ledgers: &[crate::LedgerRecord],
    v: &mut Verdict,
) {
    let ledgers = [
        of_job(ledgers, "activity_task"),
        of_job(ledgers, "activity_event"),
    ];
    let tasks = index(stack.salesforce.records("Task"), "Gainsight_Activity_Id__c");
    let events = index(
        stack.salesforce.records("Event"),
        "Gainsight_Activity_Id__c",
    );
    for (gsid, (subject, object)) in &expected.activities {
        let (twins, ledgers) = match *object {
            "Task" => (tasks.get(gsid), &ledgers[0]),
            _ => (events.get(gsid), &ledgers[1]),
        };
        let ledger = ledgers.get(gsid.as_str()).copied();
        let shows = |t: &Map<String, Value>| t.get("Subject") == Some(&json!(subject));
        let what = format!("activity {gsid} ({subject}, a {object})");
        judge(v, what, twins, ledger, shows);
    }
}

/// What the pair of `company` says, for a record lost while it waited for its Account.
fn parent_note(companies: &HashMap<String, &crate::LedgerRecord>, company: Option<&str>) -> String {
    let Some(c) = company else {
        return String::new();
    };
    let l = companies.get(c);
    let synced = l.map(|l| (l.last_sync_at_ms, l.history.first().map(|h| h.at_ms)));
    format!("; its Company {c}: (last sync, first outcome) {synced:?}")
}

/// The ledger records of `job`, by key.
fn of_job<'a>(
    ledgers: &'a [crate::LedgerRecord],
    job: &str,
) -> HashMap<String, &'a crate::LedgerRecord> {
    ledgers
        .iter()
        .filter(|l| l.job == job)
        .map(|l| (l.key.to_string(), l))
        .collect()
}

/// `records` by the value of their `field`.
fn index(
    records: Vec<Map<String, Value>>,
    field: &str,
) -> HashMap<String, Vec<Map<String, Value>>> {
    let mut by: HashMap<String, Vec<Map<String, Value>>> = HashMap::new();
    for r in records {
        if let Some(key) = r.get(field).and_then(Value::as_str) {
            by.entry(key.to_string()).or_default().push(r);
        }
    }
    by
}

/// What the ledger says of a record, for the examples of what went wrong.
fn said(record: Option<&crate::LedgerRecord>) -> String {
    record
        .map(|l| {
            format!(
                "ledger: synced {} error {} ignored {} ({:?}) history {:?}",
                l.synced, l.error, l.ignored_count, l.last_ignored_reason, l.history
            )
        })
        .unwrap_or_else(|| "no ledger record".into())
}

/// One record's verdict: one twin that shows the last change, or not, unless its ledger record
/// says it failed.
fn judge(
    v: &mut Verdict,
    what: String,
    twins: Option<&Vec<Map<String, Value>>>,
    ledger: Option<&crate::LedgerRecord>,
    shows: impl Fn(&Map<String, Value>) -> bool,
) {
    let twins = twins.map(Vec::as_slice).unwrap_or_default();
    let failed = ledger.is_some_and(|l| l.error);
    let what = format!("{what}; {}", said(ledger));
    let example = |v: &mut Verdict, text: String| {
        if v.examples.len() < 10 {
            v.examples.push(text);
        }
    };
    if twins.len() > 1 {
        v.duplicated += 1;
        example(v, format!("{what}: {} twins", twins.len()));
    } else if !twins.first().is_some_and(&shows) && !failed {
        v.lost += 1;
        let twin = twins.first().map(|t| {
            let keep = [
                "Name",
                "AnnualRevenue",
                "Phone",
                "Email",
                "LastName",
                "Subject",
                "Priority",
            ];
            t.iter()
                .filter(|(k, _)| keep.contains(&k.as_str()))
                .collect::<Vec<_>>()
        });
        example(v, format!("{what}: twin {twin:?}"));
    }
}
