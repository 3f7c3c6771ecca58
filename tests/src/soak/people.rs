//! What the people do during the soak: at the soak's rate, each change is planned from what was
//! made before (an edit picks a record whose creation has completed and that no edit in flight
//! holds), made through the systems' own APIs concurrently with the changes still in flight, and
//! recorded as what its record's twin must show once it has completed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Result;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Map, Value};

use super::{Expected, Soak};
use crate::Stack;

/// One person's change.
#[derive(Clone, Debug)]
enum Action {
    CreateCompany {
        name: String,
        arr: i64,
    },
    EditCompany {
        gsid: String,
        name: String,
        arr: i64,
    },
    CreateAccount {
        name: String,
        phone: String,
    },
    EditAccount {
        id: String,
        phone: String,
    },
    CreatePerson {
        email: String,
        last: String,
        /// Its Company, in the children-first order.
        company: Option<String>,
    },
    /// A Case in Gainsight on an earlier Company.
    CreateGainsightCase {
        subject: String,
        company: Option<String>,
    },
    CreateSalesforceCase {
        subject: String,
        priority: String,
    },
    EditSalesforceCase {
        id: String,
        subject: String,
        priority: String,
    },
    /// A Timeline activity on an earlier Company: a call (a Task) or a meeting (an Event).
    CreateActivity {
        subject: String,
        object: &'static str,
        company: Option<String>,
    },
}

/// Makes `soak.changes` changes at `soak.per_second`, each started on its tick whatever the
/// ones before it still wait for; answers when the last one was started, from the first.
pub(super) async fn act(stack: &Stack, expected: &mut Expected, soak: Soak) -> Result<Duration> {
    let tick = Duration::from_secs_f64(1.0 / f64::from(soak.per_second.max(1)));
    let first = tokio::time::Instant::now();
    let mut last_started = Duration::ZERO;
    let mut busy: HashSet<String> = HashSet::new();
    let mut in_flight = FuturesUnordered::new();
    // Companies' creation events still to reach the webhook (children-first order).
    let mut late = FuturesUnordered::new();
    let mut next = tokio::time::Instant::now();
    let mut i = 0;
    while i < soak.changes || !in_flight.is_empty() || !late.is_empty() {
        tokio::select! {
            _ = tokio::time::sleep_until(next), if i < soak.changes => {
                let action = plan(expected, &busy, i);
                if let Some(key) = edited(&action) {
                    busy.insert(key.to_string());
                }
                expected.changes += 1;
                let quiet = soak.children_first && matches!(action, Action::CreateCompany { .. });
                in_flight.push(async move {
                    let made = match quiet {
                        true => announce_later(stack, &action, i).await,
                        false => perform(stack, &action).await.map(|id| (id, None)),
                    };
                    (action, made)
                });
                i += 1;
                next += tick;
                last_started = first.elapsed();
            }
            Some((action, made)) = in_flight.next() => {
                if let Some(key) = edited(&action) {
                    busy.remove(key);
                }
                let (id, announcement) = made?;
                if let Some(announce) = announcement {
                    late.push(announce);
                }
                record(expected, action, id);
            }
            Some(announced) = late.next() => announced?,
        }
    }
    Ok(last_started)
}

/// The creation event of a Company, as its Gainsight rule would send it, on its way.
type Announcement<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;

/// Children first: the Company is loaded quietly (no rule event, so no Account), and its creation
/// event reaches the webhook `i`-dependent 0 to 60 s later, while children are made on it.
async fn announce_later<'a>(
    stack: &'a Stack,
    action: &Action,
    i: usize,
) -> Result<(Option<String>, Option<Announcement<'a>>)> {
    let Action::CreateCompany { name, arr } = action else {
        return Ok((None, None));
    };
    // Loaded as another integration would, through the faults (a lost answer leaves a Company
    // nothing refers to, which the check does not count).
    let record = json!({"Name": name, "Arr": arr});
    let mut tries = 0;
    let gsid = loop {
        match stack
            .gainsight_insert_quietly("Company", vec![record.clone()])
            .await
        {
            Ok(mut ids) if !ids.is_empty() => break ids.remove(0),
            _ if tries < 20 => tries += 1,
            other => anyhow::bail!("Company {name} not loaded: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let delay = Duration::from_millis(((i * 7_919) % 60_000) as u64);
    let event = json!({
        "eventId": format!("soak-late-{gsid}"), "eventType": "created", "objectName": "Company",
        "occurredAt": shared::time::now_ms(),
        "records": [{"Gsid": gsid, "Name": name, "Arr": arr}],
    })
    .to_string();
    let company = gsid.clone();
    let announce: Announcement<'a> = Box::pin(async move {
        tokio::time::sleep(delay).await;
        for _ in 0..20 {
            let ts = shared::time::now_ms() / 1000;
            let answer = reqwest::Client::new()
                .post(format!("{}/gainsight", stack.webhook_url()))
                .header("content-type", "application/json")
                .header("x-gs-timestamp", ts.to_string())
                .header(
                    "x-gs-signature",
                    crate::sign(crate::WEBHOOK_SECRET, ts, &event),
                )
                .body(event.clone())
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        anyhow::bail!("the late creation event of Company {company} was never accepted")
    });
    Ok((Some(gsid), Some(announce)))
}

/// The `i`th change: new records and edits of earlier ones, of every synced kind (Companies and
/// Accounts, People, Cases both ways, Timeline activities).
fn plan(expected: &Expected, busy: &HashSet<String>, i: usize) -> Action {
    let company = || pick(&expected.companies, &HashSet::new(), i);
    let priority = ["High", "Medium", "Low"][i % 3].to_string();
    match i % 10 {
        0..=2 => match edit_on(2, &expected.companies, busy, i) {
            Some(gsid) => Action::EditCompany {
                gsid,
                name: format!("Soak Co {i} renamed"),
                arr: i as i64 * 10,
            },
            None => Action::CreateCompany {
                name: format!("Soak Co {i}"),
                arr: i as i64,
            },
        },
        3 | 4 => match edit_on(4, &expected.accounts, busy, i) {
            Some(id) => Action::EditAccount {
                id,
                phone: format!("+1 666 {i:04}"),
            },
            None => Action::CreateAccount {
                name: format!("Soak Account {i}"),
                phone: format!("+1 555 {i:04}"),
            },
        },
        5 => Action::CreatePerson {
            email: format!("soak{i}@example.com"),
            last: format!("Soak{i}"),
            company: company(),
        },
        6 => Action::CreateGainsightCase {
            subject: format!("Soak case {i}"),
            company: company(),
        },
        7 | 8 => match edit_on(8, &expected.salesforce_cases, busy, i) {
            Some(id) => Action::EditSalesforceCase {
                id,
                subject: format!("Soak case {i}"),
                priority,
            },
            None => Action::CreateSalesforceCase {
                subject: format!("Soak case {i}"),
                priority,
            },
        },
        _ => Action::CreateActivity {
            subject: format!("Soak activity {i}"),
            object: if i % 20 == 9 { "Task" } else { "Event" },
            company: company(),
        },
    }
}

/// The record an edit changes (held while the edit is in flight).
fn edited(action: &Action) -> Option<&str> {
    match action {
        Action::EditCompany { gsid: id, .. }
        | Action::EditAccount { id, .. }
        | Action::EditSalesforceCase { id, .. } => Some(id),
        _ => None,
    }
}

/// On the `slot`th change of every ten, a record of `map` to edit (see [`pick`]); otherwise, or
/// when none is free, `None` and the change makes a new record.
fn edit_on<V>(
    slot: usize,
    map: &HashMap<String, V>,
    busy: &HashSet<String>,
    i: usize,
) -> Option<String> {
    (i % 10 == slot).then(|| pick(map, busy, i)).flatten()
}

/// A record made earlier, chosen by `i`, that no edit in flight holds.
fn pick<V>(map: &HashMap<String, V>, busy: &HashSet<String>, i: usize) -> Option<String> {
    let mut keys: Vec<&String> = map.keys().filter(|k| !busy.contains(*k)).collect();
    if keys.is_empty() {
        return None;
    }
    keys.sort();
    Some(keys[(i * 7919) % keys.len()].clone())
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Makes the change in its system; the new record's id for a creation.
async fn perform(stack: &Stack, action: &Action) -> Result<Option<String>> {
    let sf = &stack.salesforce;
    let first = |mut ids: Vec<String>| ids.drain(..).next();
    Ok(match action {
        Action::CreateCompany { name, arr } => first(
            stack
                .create_companies(vec![json!({"Name": name, "Arr": arr})])
                .await?,
        ),
        Action::EditCompany { gsid, name, arr } => {
            let edit = json!({"Gsid": gsid, "Name": name, "Arr": arr});
            stack.update_companies(vec![edit]).await?;
            None
        }
        Action::CreateAccount { name, phone } => first(sf.seed(
            "Account",
            vec![fields(json!({"Name": name, "Phone": phone}))],
        )),
        Action::EditAccount { id, phone } => {
            sf.edit("Account", id, fields(json!({"Phone": phone})));
            None
        }
        Action::CreatePerson {
            email,
            last,
            company,
        } => {
            let person =
                json!({"Email": email, "LastName": last, "FirstName": "Pat", "CompanyId": company});
            first(stack.gainsight_insert("Person", vec![person]).await?)
        }
        Action::CreateGainsightCase { subject, company } => {
            let case = json!({"Subject": subject, "Priority": "High", "CompanyId": company});
            first(stack.gainsight_insert("Case", vec![case]).await?)
        }
        Action::CreateSalesforceCase { subject, priority } => {
            let case = json!({"Subject": subject, "Priority": priority, "Status": "New"});
            first(sf.seed("Case", vec![fields(case)]))
        }
        Action::EditSalesforceCase {
            id,
            subject,
            priority,
        } => {
            let edit = json!({"Subject": subject, "Priority": priority});
            sf.edit("Case", id, fields(edit));
            None
        }
        Action::CreateActivity {
            subject,
            object,
            company,
        } => {
            let activity = activity(subject, object, company.as_deref());
            first(
                stack
                    .gainsight_insert("activity_timeline", vec![activity])
                    .await?,
            )
        }
    })
}

/// A 30-minute Timeline activity on `company`: a call when it becomes a Task, else a meeting.
fn activity(subject: &str, object: &str, company: Option<&str>) -> Value {
    let type_name = if object == "Task" { "Call" } else { "Meeting" };
    json!({
        "Subject": subject, "TypeName": type_name, "GsCompanyId": company,
        "NotesPlainText": format!("notes of {subject}"),
        "ActivityDate": 1_767_261_600_000_i64, "DurationInMins": 30,
    })
}

/// Records what a completed change's record must show.
fn record(expected: &mut Expected, action: Action, made: Option<String>) {
    let id = made.unwrap_or_default();
    match action {
        Action::CreateCompany { name, arr } => {
            expected.companies.insert(id, (name, arr));
        }
        Action::EditCompany { gsid, name, arr } => {
            expected.companies.insert(gsid, (name, arr));
        }
        Action::CreateAccount { phone, .. } => {
            expected.accounts.insert(id, phone);
        }
        Action::EditAccount { id, phone } => {
            expected.accounts.insert(id, phone);
        }
        Action::CreatePerson {
            email,
            last,
            company,
        } => {
            expected.people.insert(id, (email, last, company));
        }
        Action::CreateGainsightCase { subject, company } => {
            expected.gainsight_cases.insert(id, (subject, company));
        }
        Action::CreateSalesforceCase { subject, priority } => {
            expected.salesforce_cases.insert(id, (subject, priority));
        }
        Action::EditSalesforceCase {
            id,
            subject,
            priority,
        } => {
            expected.salesforce_cases.insert(id, (subject, priority));
        }
        Action::CreateActivity {
            subject, object, ..
        } => {
            expected.activities.insert(id, (subject, object));
        }
    }
}
