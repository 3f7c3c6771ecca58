//! The soak: people change records in both systems at a steady rate while every fault switch is
//! on (throttling, outages, slow and lost answers, expired sessions, row locks, crashes between a
//! function's writes and its ack, duplicate deliveries); once the queues are quiet, every change
//! is checked against both systems and the ledger. A change is lost when its record's twin does
//! not show it and the ledger does not say it failed, duplicated when its record has more than
//! one twin, and an error when the ledger says the sync failed (visible to operators).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use devstack::chaos::FaultRates;
use devstack::event_source::DeliveryFaults;
use serde_json::{json, Map, Value};

use crate::{Options, Stack};

/// What to run: how many changes, how fast, and how hard the faults hit.
#[derive(Clone, Copy, Debug)]
pub struct Soak {
    pub changes: usize,
    pub per_second: u32,
    pub faults: bool,
}

/// What the soak found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub changes: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub error: usize,
    /// Examples of what was lost or duplicated, for the report.
    pub examples: Vec<String>,
}

impl Verdict {
    pub fn line(&self) -> String {
        format!(
            "soak: {} changes, {} lost, {} duplicated, {} error",
            self.changes, self.lost, self.duplicated, self.error
        )
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
        ..Options::default()
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
    people: HashMap<String, (String, String)>,
    /// Cases made in Gainsight: GSID -> Subject.
    gainsight_cases: HashMap<String, String>,
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
    let tick = Duration::from_secs_f64(1.0 / f64::from(soak.per_second.max(1)));
    let mut next = Instant::now();
    for i in 0..soak.changes {
        change(&stack, &mut expected, i).await?;
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let sent_in = started.elapsed();
    settle(&stack).await?;
    stack.salesforce.set_fault_rates(FaultRates::default());
    stack.gainsight.set_fault_rates(FaultRates::default());
    let verdict = check(&stack, &expected).await?;
    let report = format!(
        "sent {} changes in {:.1} s; settled after {:.1} s; Salesforce faults {:?}; Gainsight faults {:?}",
        expected.changes,
        sent_in.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        stack.salesforce.fault_counts(),
        stack.gainsight.fault_counts(),
    );
    stack.stop().await;
    Ok((verdict, report))
}

fn record(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// The `i`th change, by a person in one system or the other: new records, and edits of ones made
/// earlier, of every synced kind (Companies and Accounts, People, Cases both ways, Timeline
/// activities).
async fn change(stack: &Stack, expected: &mut Expected, i: usize) -> Result<()> {
    expected.changes += 1;
    match i % 10 {
        0..=2 => company_change(stack, expected, i).await,
        3 | 4 => account_change(stack, expected, i),
        5 => {
            let (email, last) = (format!("soak{i}@example.com"), format!("Soak{i}"));
            let gsid = stack
                .gainsight_insert(
                    "Person",
                    vec![json!({"Email": email, "LastName": last, "FirstName": "Pat"})],
                )
                .await?
                .remove(0);
            expected.people.insert(gsid, (email, last));
            Ok(())
        }
        6..=8 => case_change(stack, expected, i).await,
        _ => activity(stack, expected, i).await,
    }
}

/// A Company made in Gainsight (two in three) or an earlier one renamed.
async fn company_change(stack: &Stack, expected: &mut Expected, i: usize) -> Result<()> {
    let edit = pick(&expected.companies, i).filter(|_| i % 10 == 2);
    let (name, arr) = (format!("Soak Co {i}"), i as i64);
    let gsid = match edit {
        Some((gsid, _)) => {
            let record = json!({"Gsid": gsid, "Name": name, "Arr": arr});
            stack.update_companies(vec![record]).await?;
            gsid
        }
        None => stack
            .create_companies(vec![json!({"Name": name, "Arr": arr})])
            .await?
            .remove(0),
    };
    expected.companies.insert(gsid, (name, arr));
    Ok(())
}

/// An Account made in Salesforce, or an earlier one's Phone changed.
fn account_change(stack: &Stack, expected: &mut Expected, i: usize) -> Result<()> {
    let phone = format!("+1 555 {i:04}");
    match pick(&expected.accounts, i).filter(|_| i % 10 == 4) {
        Some((id, _)) => {
            let edit = record(json!({"Phone": phone}));
            stack.salesforce.edit("Account", &id, edit);
            expected.accounts.insert(id, phone);
        }
        None => {
            let account = record(json!({"Name": format!("Soak Account {i}"), "Phone": phone}));
            let id = stack.salesforce.seed("Account", vec![account]).remove(0);
            expected.accounts.insert(id, phone);
        }
    }
    Ok(())
}

/// A Case made in Gainsight on an earlier Company, one made in Salesforce, or an earlier
/// Salesforce one's Subject and Priority changed.
async fn case_change(stack: &Stack, expected: &mut Expected, i: usize) -> Result<()> {
    let subject = format!("Soak case {i}");
    if i % 10 == 6 {
        let company = pick(&expected.companies, i).map(|(gsid, _)| gsid);
        let case = json!({"Subject": subject, "Priority": "High", "CompanyId": company});
        let gsid = stack.gainsight_insert("Case", vec![case]).await?.remove(0);
        expected.gainsight_cases.insert(gsid, subject);
        return Ok(());
    }
    let priority = ["High", "Medium", "Low"][i % 3].to_string();
    match pick(&expected.salesforce_cases, i).filter(|_| i % 10 == 8) {
        Some((id, _)) => {
            let edit = record(json!({"Subject": subject, "Priority": priority}));
            stack.salesforce.edit("Case", &id, edit);
            expected.salesforce_cases.insert(id, (subject, priority));
        }
        None => {
            let case = record(json!({"Subject": subject, "Priority": priority, "Status": "New"}));
            let id = stack.salesforce.seed("Case", vec![case]).remove(0);
            expected.salesforce_cases.insert(id, (subject, priority));
        }
    }
    Ok(())
}

/// A Timeline activity logged in Gainsight on an earlier Company: a call (a Task) or a
/// 30-minute meeting (an Event), in turn.
async fn activity(stack: &Stack, expected: &mut Expected, i: usize) -> Result<()> {
    let company = pick(&expected.companies, i).map(|(gsid, _)| gsid);
    let subject = format!("Soak activity {i}");
    let (type_name, object) = if i % 20 == 9 {
        ("Call", "Task")
    } else {
        ("Meeting", "Event")
    };
    let activity = json!({
        "Subject": subject, "TypeName": type_name, "GsCompanyId": company,
        "NotesPlainText": format!("notes of {subject}"),
        "ActivityDate": 1_767_261_600_000_i64, "DurationInMins": 30,
    });
    let gsid = stack
        .gainsight_insert("activity_timeline", vec![activity])
        .await?
        .remove(0);
    expected.activities.insert(gsid, (subject, object));
    Ok(())
}

/// A record made earlier, chosen by `i`.
fn pick<V: Clone>(map: &HashMap<String, V>, i: usize) -> Option<(String, V)> {
    if map.is_empty() {
        return None;
    }
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let key = keys[(i * 7919) % keys.len()];
    Some((key.clone(), map[key].clone()))
}

/// Waits until both queues have been empty for a while (retries, deferrals and redeliveries
/// come back within seconds on the local stack).
async fn settle(stack: &Stack) -> Result<()> {
    let mut quiet_since: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(900);
    while Instant::now() < deadline {
        let depth = stack.aws.queue_depth("ChangesQueue").await?
            + stack.aws.queue_depth("WritesQueue").await?;
        match (depth, quiet_since) {
            (0, Some(t)) if t.elapsed() > Duration::from_secs(10) => return Ok(()),
            (0, None) => quiet_since = Some(Instant::now()),
            (0, Some(_)) => {}
            _ => quiet_since = None,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("the queues did not settle within 15 minutes")
}

/// Checks every record the people made against its twin and the ledger.
async fn check(stack: &Stack, expected: &Expected) -> Result<Verdict> {
    let mut v = Verdict {
        changes: expected.changes,
        ..Verdict::default()
    };
    let ledgers = stack.ledger_records().await?;
    v.error = ledgers.iter().filter(|l| l.error).count();
    for l in ledgers.iter().filter(|l| l.error).take(3) {
        v.examples
            .push(format!("error {} {}: {:?}", l.job, l.key, l.last_error));
    }
    let by_key: HashMap<String, &crate::LedgerRecord> =
        ledgers.iter().map(|l| (l.key.to_string(), l)).collect();
    let failed = |key: &str| by_key.get(key).is_some_and(|l| l.error);
    let said = |key: &str| said(by_key.get(key).copied());
    // Each system's records read once and indexed by the field that names the twin.
    let accounts = index(
        stack.salesforce.records("Account"),
        "Gainsight_Company_Id__c",
    );
    let companies = index(stack.gainsight.records("Company"), "SfdcAccountId");
    let contacts = index(
        stack.salesforce.records("Contact"),
        "Gainsight_Person_Id__c",
    );
    let none = Vec::new();
    for (gsid, (name, arr)) in &expected.companies {
        let twins = accounts.get(gsid).unwrap_or(&none);
        let shows = |t: &Map<String, Value>| {
            t.get("Name") == Some(&json!(name))
                && t.get("AnnualRevenue").and_then(Value::as_f64) == Some(*arr as f64)
        };
        let what = format!("Company {gsid} ({name}, {arr}); {}", said(gsid));
        judge(&mut v, &what, twins, shows, failed(gsid));
    }
    let by_salesforce_id: HashMap<&str, String> = ledgers
        .iter()
        .filter(|l| l.job == "company_account")
        .filter_map(|l| Some((l.salesforce_id.as_deref()?, l.key.to_string())))
        .collect();
    for (id, phone) in &expected.accounts {
        let twins = companies.get(id).unwrap_or(&none);
        let shows = |t: &Map<String, Value>| t.get("Phone") == Some(&json!(phone));
        let key = by_salesforce_id
            .get(id.as_str())
            .cloned()
            .unwrap_or_else(|| format!("sf:{id}"));
        let what = format!("Account {id} ({phone}); {}", said(&key));
        judge(&mut v, &what, twins, shows, failed(&key));
    }
    for (gsid, (email, last)) in &expected.people {
        let twins = contacts.get(gsid).unwrap_or(&none);
        let shows = |t: &Map<String, Value>| {
            t.get("Email") == Some(&json!(email)) && t.get("LastName") == Some(&json!(last))
        };
        let what = format!("Person {gsid}; {}", said(gsid));
        judge(&mut v, &what, twins, shows, failed(gsid));
    }
    check_cases(stack, expected, &ledgers, &mut v);
    check_activities(stack, expected, &ledgers, &mut v);
    Ok(v)
}

/// Each Case against its twin: a Gainsight Case's Salesforce Case (by its GSID there), a
/// Salesforce Case's Gainsight Case (by its Salesforce Id there).
fn check_cases(
    stack: &Stack,
    expected: &Expected,
    ledgers: &[crate::LedgerRecord],
    v: &mut Verdict,
) {
    let by_key = of_job(ledgers, "case_case");
    let none = Vec::new();
    let salesforce = index(stack.salesforce.records("Case"), "Gainsight_Case_Id__c");
    for (gsid, subject) in &expected.gainsight_cases {
        let twins = salesforce.get(gsid).unwrap_or(&none);
        let shows = |t: &Map<String, Value>| t.get("Subject") == Some(&json!(subject));
        let ledger = by_key.get(gsid.as_str()).copied();
        let what = format!("Gainsight Case {gsid} ({subject}); {}", said(ledger));
        judge(v, &what, twins, shows, ledger.is_some_and(|l| l.error));
    }
    let gainsight = index(stack.gainsight.records("Case"), "SfdcCaseId");
    let by_salesforce_id: HashMap<&str, &crate::LedgerRecord> = by_key
        .values()
        .filter_map(|l| Some((l.salesforce_id.as_deref()?, *l)))
        .collect();
    for (id, (subject, priority)) in &expected.salesforce_cases {
        let twins = gainsight.get(id).unwrap_or(&none);
        let shows = |t: &Map<String, Value>| {
            t.get("Subject") == Some(&json!(subject)) && t.get("Priority") == Some(&json!(priority))
        };
        let ledger = by_salesforce_id
            .get(id.as_str())
            .or_else(|| by_key.get(&format!("sf:{id}")))
            .copied();
        let what = format!(
            "Salesforce Case {id} ({subject}, {priority}); {}",
            said(ledger)
        );
        judge(v, &what, twins, shows, ledger.is_some_and(|l| l.error));
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
    let none = Vec::new();
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
        let what = format!("activity {gsid} ({subject}, a {object}); {}", said(ledger));
        judge(
            v,
            &what,
            twins.unwrap_or(&none),
            shows,
            ledger.is_some_and(|l| l.error),
        );
    }
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

/// One record's verdict: one twin that shows the last change, or not.
fn judge(
    v: &mut Verdict,
    what: &str,
    twins: &[Map<String, Value>],
    shows: impl Fn(&Map<String, Value>) -> bool,
    failed: bool,
) {
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
