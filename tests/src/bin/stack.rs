//! `stack demo`: a real sync end to end on the local stack, printed step by step.
//! `stack up`: the local stack with the functions running, until Ctrl-C, for exploring by hand.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};
use sync_tests::relay::{event_source, SalesforceEvents};
use sync_tests::{Options, Stack, GAINSIGHT_ACCESS_KEY, WEBHOOK_SECRET};

/// A record as the emulators hold it.
type Record = serde_json::Map<String, Value>;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match std::env::args().nth(1).as_deref() {
        Some("demo") => demo().await,
        Some("up") => up().await,
        _ => bail!("usage: stack demo | stack up"),
    }
}

/// Shell exports for using the local stack by hand (`. .devstack/env`): the same variables the
/// functions and `syncctl` read, with the local test credentials.
fn env_file(stack: &Stack) -> String {
    let mut vars = stack.syncctl_env();
    vars.extend([
        ("WEBHOOK_URL", stack.webhook_url()),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        (
            "SALESFORCE_OUTBOUND_URL",
            sync_tests::outbound_url(&stack.webhook_url()),
        ),
        ("SALESFORCE_EVENT_SOURCE", event_source()),
        ("SALESFORCE_EVENT_BUS_NAME", event_source()),
        ("GAINSIGHT_ACCESS_KEY", GAINSIGHT_ACCESS_KEY.to_string()),
        ("SALESFORCE_CLIENT_SECRET", stack.salesforce.client_secret()),
    ]);
    if let Some(buses) = &stack.buses {
        vars.push(("AWS_ENDPOINT_URL_EVENTS", buses.url()));
    }
    vars.iter()
        .map(|(name, value)| format!("export {name}='{value}'\n"))
        .collect()
}

async fn up() -> Result<()> {
    // The poller's schedules fire this many times faster than their rates (10 minutes: 10 s).
    let speedup: u32 = std::env::var("SCHEDULE_SPEEDUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let options = Options {
        schedule_speedup: (speedup > 0).then_some(speedup),
        salesforce_events: SalesforceEvents::from_env(SalesforceEvents::Both)?,
        ..Options::default()
    };
    let stack = Stack::start(options).await?;
    let env_path = std::path::Path::new(".devstack").join("env");
    std::fs::create_dir_all(".devstack")?;
    std::fs::write(&env_path, env_file(&stack))?;
    println!(
        "local stack is up (Ctrl-C to stop); `. {}` exports what the functions and syncctl read",
        env_path.display()
    );
    print_endpoints(&stack, speedup);
    // `make down` sends SIGTERM: stop cleanly so moto, a child process, goes with us.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    println!("local stack stopping");
    stack.stop().await;
    Ok(())
}

/// Where everything listens, the schedules, and a first thing to try.
fn print_endpoints(stack: &Stack, speedup: u32) {
    println!("  AWS_ENDPOINT_URL={}", stack.aws.moto.endpoint);
    println!("  AWS_ENDPOINT_URL_SQS={}", stack.aws.sqs.endpoint);
    println!("  AWS_REGION={}", devstack::moto::REGION);
    println!("  table:              {}", stack.resources.table_name);
    println!(
        "  changes queue:      {}",
        stack.resources.changes_queue_url
    );
    println!("  writes queue:       {}", stack.resources.writes_queue_url);
    println!(
        "  Lambda Invoke API:  {} (ResyncFunction, PollerFunction; syncctl resync / make resync)",
        stack.lambda_url()
    );
    print_schedules(stack, speedup);
    println!(
        "  webhook (Function URL): {}/gainsight   secret: {WEBHOOK_SECRET}",
        stack.webhook_url()
    );
    println!(
        "  Outbound Messages:  {} (SALESFORCE_OUTBOUND_URL)",
        sync_tests::outbound_url(&stack.webhook_url())
    );
    println!(
        "  Gainsight emulator: {}   Accesskey: {} (a person; the integration user's is {GAINSIGHT_ACCESS_KEY}, whose changes the rule skips)",
        stack.gainsight.url(),
        stack.gainsight.person_key()
    );
    println!(
        "  Salesforce emulator: {}   client id: {}",
        stack.salesforce.url(),
        stack.salesforce.client_id()
    );
    println!(
        "  try: curl -s -X POST {}/v1/data/objects/Company -H 'Accesskey: {}' \\",
        stack.gainsight.url(),
        stack.gainsight.person_key()
    );
    println!("         -H 'content-type: application/json' -d '{{\"records\":[{{\"Name\":\"Hand Made Co\",\"Arr\":1}}]}}'");
    println!(
        "       curl -s {}/__emulator/records/Account",
        stack.salesforce.url()
    );
}

/// Each schedule of the template, and how often the stack fires it.
fn print_schedules(stack: &Stack, speedup: u32) {
    for s in &stack.aws.deployment.schedules {
        let every = s
            .expression
            .as_deref()
            .and_then(devstack::scheduler::rate_period)
            .map(|p| format!("every {} s", (p / speedup.max(1)).as_secs()))
            .unwrap_or_else(|| "not fired locally".into());
        let fired = if speedup > 0 {
            every
        } else {
            "off (SCHEDULE_SPEEDUP=0)".into()
        };
        println!(
            "  schedule {}: {} {} -> {}",
            s.rule,
            s.expression.as_deref().unwrap_or("-"),
            s.input,
            fired
        );
    }
}

async fn demo() -> Result<()> {
    let started = Instant::now();
    println!("demo: starting moto, deploying infra/template.yaml into it, starting the Gainsight and Salesforce emulators");
    // The template's schedules run 3,600 times faster than their rates (the 4-hour Timeline
    // schedule every 4 s; none more often than once a second).
    let stack = Stack::start(Options {
        schedule_speedup: Some(DEMO_SPEEDUP),
        salesforce_events: SalesforceEvents::from_env(SalesforceEvents::Both)?,
        ..Options::default()
    })
    .await?;
    introduce(&stack, started);
    let (ids, accounts) = companies_to_accounts(&stack).await?;
    person_to_contact(&stack, &ids).await?;
    let (case, sf_case) = case_to_case(&stack, &ids).await?;
    account_to_company(&stack).await?;
    contact_to_person(&stack, &accounts).await?;
    case_closed_in_salesforce(&stack, &case, &sf_case).await?;
    account_deleted_in_salesforce(&stack).await?;
    accounts_merged_in_salesforce(&stack).await?;
    no_echo(&stack, &ids).await?;
    timeline_on_schedule(&stack, &ids).await?;
    report(&stack).await?;
    show_runs(&stack).await?;
    let (synced, failed, ignored) = stack.counts().await?;
    stack.stop().await;
    println!("demo: {synced} synced, {failed} failed, {ignored} ignored");
    Ok(())
}

/// What was deployed and where the systems post their changes.
fn introduce(stack: &Stack, started: Instant) {
    println!(
        "demo: stack up in {:.1} s: table {}, queues changes + writes (each with a DLQ), KMS key {}",
        started.elapsed().as_secs_f64(),
        stack.resources.table_name,
        stack.resources.kms_key_id
    );
    println!(
        "demo: the Gainsight rule posts signed change events to the webhook at {}/gainsight",
        stack.webhook_url()
    );

    if stack.salesforce_events.outbound() {
        println!(
            "demo: Salesforce Outbound Messages (Account, Contact, Case) go to {}/salesforce?token=<salesforce-outbound-token>; each notification is read back from Salesforce before it is mapped",
            stack.webhook_url()
        );
    }
    if stack.salesforce_events.change_data_capture() {
        println!(
            "demo: Salesforce change events (Change Data Capture through Event Relay) go on the EventBridge bus {}; its rule puts them on the changes queue (SALESFORCE_EVENTS=outbound|cdc|both)",
            event_source()
        );
    }
    let jobs: Vec<String> = stack
        .jobs
        .iter()
        .map(|j| {
            format!(
                "{} ({} <-> {})",
                j.name, j.gainsight.object, j.salesforce.object
            )
        })
        .collect();
    println!(
        "demo: jobs checked against both describes: {}",
        jobs.join(", ")
    );
}

/// Step 1, Gainsight -> Salesforce: Companies become Accounts. Their GSIDs and Account Ids.
async fn companies_to_accounts(stack: &Stack) -> Result<(Vec<String>, Vec<String>)> {
    let ids = stack
        .create_companies(vec![
            json!({"Name": "Acme Corp", "Arr": 120000, "Industry": "Manufacturing", "Employees": 420}),
            json!({"Name": "Globex", "Arr": 87000, "Industry": "Technology", "Employees": 95}),
        ])
        .await?;
    println!(
        "demo: [company_account gs->sf] created Companies {} in Gainsight",
        ids.join(", ")
    );
    let mut accounts = Vec::new();
    for gsid in &ids {
        let t = Instant::now();
        let account = stack
            .eventually(WAIT, "an Account", || async {
                Ok(stack.accounts_for(gsid).pop())
            })
            .await?;
        println!(
            "demo:   Company {gsid} -> Account {} \"{}\" AnnualRevenue={} (after {} ms)",
            text(&account["Id"]),
            text(&account["Name"]),
            account["AnnualRevenue"],
            t.elapsed().as_millis()
        );
        accounts.push(text(&account["Id"]));
    }

    Ok((ids, accounts))
}

/// Step 2, Gainsight -> Salesforce with a derived lookup: a Person's CompanyId becomes AccountId.
async fn person_to_contact(stack: &Stack, ids: &[String]) -> Result<()> {
    let person = stack
        .gainsight_insert(
            "Person",
            vec![json!({"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@acme.test", "Title": "CTO", "CompanyId": ids[0]})],
        )
        .await?
        .remove(0);
    let contact = stack
        .eventually(WAIT, "a Contact", || async {
            Ok(stack
                .salesforce_where("Contact", "Gainsight_Person_Id__c", &person)
                .pop())
        })
        .await?;
    println!(
        "demo: [person_contact gs->sf] Person {person} -> Contact {} with AccountId {} (looked up through Account.Gainsight_Company_Id__c = {})",
        text(&contact["Id"]),
        text(&contact["AccountId"]),
        ids[0]
    );

    Ok(())
}

/// Step 3, Gainsight -> Salesforce: a Case. The Gainsight Case id and the Salesforce Case.
async fn case_to_case(stack: &Stack, ids: &[String]) -> Result<(String, Record)> {
    let case = stack
        .gainsight_insert(
            "Case",
            vec![json!({"Subject": "Renewal at risk", "Status": "New", "Priority": "High", "CompanyId": ids[1]})],
        )
        .await?
        .remove(0);
    let sf_case = stack
        .eventually(WAIT, "a Salesforce Case", || async {
            Ok(stack
                .salesforce_where("Case", "Gainsight_Case_Id__c", &case)
                .pop())
        })
        .await?;
    println!(
        "demo: [case_case gs->sf] Case {case} -> Case {} \"{}\" AccountId {}",
        text(&sf_case["Id"]),
        text(&sf_case["Subject"]),
        text(&sf_case["AccountId"])
    );

    Ok((case, sf_case))
}

/// Step 4, Salesforce -> Gainsight: a rep creates an Account; a Company appears, and the Account
/// learns its GSID.
async fn account_to_company(stack: &Stack) -> Result<()> {
    let account_id = stack
        .salesforce
        .seed(
            "Account",
            vec![record(
                json!({"Name": "Initech", "Phone": "+1 555 0100", "Industry": "Finance"}),
            )],
        )
        .remove(0);
    let company = stack
        .eventually(WAIT, "a Company", || async {
            Ok(stack
                .gainsight_where("Company", "SfdcAccountId", &account_id)
                .pop())
        })
        .await?;
    let gsid = text(&company["Gsid"]);
    stack
        .eventually(WAIT, "the GSID written back", || async {
            Ok(stack
                .salesforce_where("Account", "Gainsight_Company_Id__c", &gsid)
                .pop())
        })
        .await?;
    println!(
        "demo: [company_account sf->gs] Account {account_id} ({}) -> Company {gsid} \"{}\" Phone={}; Account.Gainsight_Company_Id__c = {gsid}",
        paths(stack),
        text(&company["Name"]),
        text(&company["Phone"])
    );

    Ok(())
}

/// How Salesforce changes reach the stack, as people say it.
fn paths(stack: &Stack) -> &'static str {
    match stack.salesforce_events {
        SalesforceEvents::Outbound => "Outbound Message",
        SalesforceEvents::ChangeDataCapture => "change event",
        SalesforceEvents::Both => "change event and Outbound Message",
    }
}

/// An Account deleted in Salesforce: the change event records it on the pair and in the runs;
/// the Company stays.
async fn account_deleted_in_salesforce(stack: &Stack) -> Result<()> {
    if !stack.salesforce_events.change_data_capture() {
        println!("demo: (Outbound Messages do not fire on delete: SALESFORCE_EVENTS=cdc or both shows deletes)");
        return Ok(());
    }
    let account = stack
        .salesforce
        .seed("Account", vec![record(json!({"Name": "Soon Gone Ltd"}))])
        .remove(0);
    let company = stack
        .eventually(WAIT, "a Company", || async {
            Ok(stack
                .gainsight_where("Company", "SfdcAccountId", &account)
                .pop())
        })
        .await?;
    let gsid = text(&company["Gsid"]);
    stack.drained(WAIT).await?;
    stack.salesforce.delete("Account", &account);
    let said = stack
        .eventually(WAIT, "the delete recorded", || async {
            let ledger = stack.ledger(&gsid).await?;
            let reason = ledger.and_then(|l| l.last_ignored_reason);
            Ok(reason.filter(|r| r.contains("was deleted in Salesforce")))
        })
        .await?;
    println!("demo: [company_account sf delete] Account {account} deleted in Salesforce -> recorded on Company {gsid}: {said}");
    Ok(())
}

/// Two Accounts merged in Salesforce, the losing one paired and the master not: the merge is
/// recorded, and the loser's Company moves to the master (its `SfdcAccountId` becomes the
/// master's Id).
async fn accounts_merged_in_salesforce(stack: &Stack) -> Result<()> {
    if !stack.salesforce_events.change_data_capture() {
        return Ok(());
    }
    let loser = stack
        .salesforce
        .seed("Account", vec![record(json!({"Name": "Merge Me Ltd"}))])
        .remove(0);
    let company = stack
        .eventually(WAIT, "a Company", || async {
            Ok(stack
                .gainsight_where("Company", "SfdcAccountId", &loser)
                .pop())
        })
        .await?;
    let gsid = text(&company["Gsid"]);
    // An Account the sync never saw (loaded before the relay was set up): no pair of its own.
    let master = stack
        .salesforce
        .load_without_workflow("Account", vec![record(json!({"Name": "Merged Into Ltd"}))])
        .remove(0);
    stack.drained(WAIT).await?;
    stack
        .salesforce
        .merge("Account", &master, std::slice::from_ref(&loser));
    // The scheduled poll may have paired the master meanwhile: then both are paired and the
    // merge waits for an operator instead of moving the Company.
    let said = stack
        .eventually(WAIT, "the merge recorded", || async {
            let company = stack.gainsight_record("Company", &gsid);
            let moved = company.is_some_and(|c| c["SfdcAccountId"] == json!(master));
            let ledger = stack.ledger(&gsid).await?;
            let said =
                ledger.and_then(|l| l.last_error.filter(|_| l.error).or(l.last_ignored_reason));
            Ok(said.filter(|s| s.contains("merged into") && (moved || s.contains("both had"))))
        })
        .await?;
    println!("demo: [company_account sf merge] Account {loser} merged into {master} -> on Company {gsid}: {said}");
    Ok(())
}

/// Step 5, Salesforce -> Gainsight: a Contact becomes a Person (upserted by email), its company link
/// derived from AccountId.
async fn contact_to_person(stack: &Stack, accounts: &[String]) -> Result<()> {
    let contact_id = stack
        .salesforce
        .seed(
            "Contact",
            vec![record(json!({"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@globex.test", "AccountId": accounts[1]}))],
        )
        .remove(0);
    let gs_person = stack
        .eventually(WAIT, "a Person", || async {
            Ok(stack
                .gainsight_where("Person", "Email", "grace@globex.test")
                .pop())
        })
        .await?;
    println!(
        "demo: [person_contact sf->gs] Contact {contact_id} -> Person {} upserted by email, CompanyId {} (the Company whose SfdcAccountId is {})",
        text(&gs_person["Gsid"]),
        text(&gs_person["CompanyId"]),
        accounts[1]
    );

    Ok(())
}

/// Step 6, Salesforce -> Gainsight: support closes the Case in Salesforce.
async fn case_closed_in_salesforce(stack: &Stack, case: &str, sf_case: &Record) -> Result<()> {
    assert_edit(stack.salesforce.edit(
        "Case",
        &text(&sf_case["Id"]),
        record(json!({"Status": "Closed"})),
    ))?;
    stack
        .eventually(WAIT, "the Case closed in Gainsight", || async {
            Ok(stack
                .gainsight_record("Case", case)
                .filter(|c| c["Status"] == json!("Closed")))
        })
        .await?;
    println!("demo: [case_case sf->gs] Case {} closed in Salesforce -> Gainsight Case {case} Status=Closed", text(&sf_case["Id"]));

    Ok(())
}

/// Step 7, bi-directional without loops: a name changed in Gainsight is written once, and the
/// Outbound Message rule skips the integration user's edit, so no echo comes back.
async fn no_echo(stack: &Stack, ids: &[String]) -> Result<()> {
    stack.drained(WAIT).await?;
    let messages_before = stack.salesforce.stats().outbound_acked;
    stack
        .gainsight_update(
            "Company",
            vec![json!({"Gsid": ids[0], "Name": "Acme Corporation"})],
        )
        .await?;
    stack
        .eventually(WAIT, "the renamed Account", || async {
            Ok(stack
                .accounts_for(&ids[0])
                .pop()
                .filter(|a| a["Name"] == json!("Acme Corporation")))
        })
        .await?;
    stack.drained(WAIT).await?;
    let echoes = stack.salesforce.stats().outbound_acked - messages_before;
    if echoes != 0 {
        bail!("{echoes} Outbound Message(s) came back for the integration user's own write");
    }
    println!(
        "demo: [company_account bi-directional] Name changed in Gainsight -> Account renamed once; no echo came back (the Outbound Message rule skips the integration user's changes)"
    );
    Ok(())
}

/// API calls on both sides and the ledger, once everything has settled.
async fn report(stack: &Stack) -> Result<()> {
    stack.drained(WAIT).await?;
    let sf = stack.salesforce.stats();
    let gs = stack.gainsight.stats();
    println!(
        "demo: Salesforce saw {} token request(s), {} API calls ({} upserts, {} creates, {} updates, {} queries, {} describes) and sent {} Outbound Messages; Gainsight answered {} API calls and delivered {} webhook events",
        sf.token_requests, sf.api_calls, sf.upsert_calls, sf.create_calls, sf.update_calls, sf.query_calls, sf.describe_calls, sf.outbound_acked, gs.api_calls, gs.webhook_deliveries
    );
    println!("demo: ledger (DynamoDB):");
    for r in stack.ledger_records().await? {
        let status = match (r.synced, r.error) {
            (true, true) => "synced,error",
            (true, false) => "synced",
            (false, true) => "error",
            (false, false) => "-",
        };
        println!(
            "demo:   {} {} -> {}  status={status} last_sync={} version={} ignored={}{}",
            r.job,
            r.key,
            r.salesforce_id.as_deref().unwrap_or("-"),
            r.last_sync_at_ms
                .map(shared::time::rfc3339)
                .unwrap_or_else(|| "-".into()),
            r.version,
            r.ignored_count,
            r.last_error
                .map(|e| format!(" last_error={e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The demo's runs, as `syncctl runs` prints them (the binary `make demo` builds, named by
/// `SYNCCTL`), run against this stack.
async fn show_runs(stack: &Stack) -> Result<()> {
    let Ok(syncctl) = std::env::var("SYNCCTL") else {
        println!("demo: (set SYNCCTL to a syncctl binary to see the runs; `make demo` does)");
        return Ok(());
    };
    let env = stack.syncctl_env();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(syncctl)
            .args(["runs", "--last", "1h"])
            .envs(env)
            .output()
    })
    .await??;
    anyhow::ensure!(
        out.status.success(),
        "syncctl runs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("demo: the runs (syncctl runs --last 1h):");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

/// How much faster than their rates the demo fires the schedules.
const DEMO_SPEEDUP: u32 = 3_600;

/// Step 8, scheduled Timeline sync: a call and a meeting logged on Acme with Ada attending,
/// loaded through the API (no rule fires), become a Task and an Event at the next 4-hour poll.
async fn timeline_on_schedule(stack: &Stack, ids: &[String]) -> Result<()> {
    let activity = |subject: &str, type_name: &str, minutes: Option<i64>| {
        let mut a = json!({
            "Subject": subject, "TypeName": type_name, "ActivityDate": shared::time::now_ms(),
            "NotesPlainText": format!("{subject}: notes"), "GsCompanyId": ids[0],
            "ExternalAttendees": [{"Name": "Ada Lovelace", "Email": "ada@acme.test"}],
        });
        if let Some(m) = minutes {
            a["DurationInMins"] = json!(m);
        }
        a
    };
    let logged = stack
        .gainsight_insert_quietly(
            "activity_timeline",
            vec![
                activity("Renewal call", "Call", None),
                activity("Quarterly review", "Meeting", Some(45)),
            ],
        )
        .await?;
    let t = Instant::now();
    println!("demo: [activity_task, activity_event gs->sf, every 4 hours] activities {} logged in Gainsight; waiting for the schedule", logged.join(", "));
    for (gsid, object, writeback) in [
        (&logged[0], "Task", "SfTaskId"),
        (&logged[1], "Event", "SfEventId"),
    ] {
        let target = stack
            .eventually(WAIT, "the activity's Task or Event", || async {
                Ok(stack
                    .salesforce_where(object, "Gainsight_Activity_Id__c", gsid)
                    .pop())
            })
            .await?;
        let id = target["Id"].clone();
        stack
            .eventually(WAIT, "the writeback", || async {
                let activity = stack.gainsight_record("activity_timeline", gsid);
                Ok(activity
                    .filter(|a| a.get(writeback) == Some(&id))
                    .map(|_| ()))
            })
            .await?;
        println!(
            "demo:   activity {gsid} -> {object} {} \"{}\" WhoId={} WhatId={} (after {} ms); {writeback} written back",
            text(&id),
            text(&target["Subject"]),
            text(&target["WhoId"]),
            text(&target["WhatId"]),
            t.elapsed().as_millis()
        );
    }
    Ok(())
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_string()
}

fn record(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn assert_edit(found: bool) -> Result<()> {
    anyhow::ensure!(
        found,
        "the record to edit is not in the Salesforce emulator"
    );
    Ok(())
}
