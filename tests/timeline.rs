//! Timeline activities reach Salesforce as Tasks and Events on the local stack, by the template's
//! 4-hour schedules (sped up) firing the poller: participants linked (WhoId, WhatId), the Task or
//! Event Id written back to the activity, an Event without an end refused with Salesforce's own
//! message, and a resynced activity updating its Task, never creating a second one.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use shared::domain::LedgerKey;
use sync_tests::{Options, Stack};

const WAIT: Duration = Duration::from_secs(90);

/// An Account and its Company, a Contact and its Person, linked as a sync would have left them.
async fn customer(stack: &Stack) -> Result<(String, String, String)> {
    let account = stack
        .salesforce_create_quietly("Account", vec![json!({"Name": "Timeline Co"})])
        .await?
        .remove(0);
    let contact = stack
        .salesforce_create_quietly(
            "Contact",
            vec![json!({"LastName": "Attendee", "Email": "ann@customer.example", "AccountId": account})],
        )
        .await?
        .remove(0);
    let company = stack
        .gainsight_insert_quietly(
            "Company",
            vec![json!({"Name": "Timeline Co", "SfdcAccountId": account})],
        )
        .await?
        .remove(0);
    stack
        .gainsight_insert_quietly(
            "Person",
            vec![json!({"LastName": "Attendee", "Email": "Ann@Customer.example", "CompanyId": company, "SfdcContactId": contact})],
        )
        .await?;
    Ok((company, account, contact))
}

fn activity(company: &str, subject: &str, type_name: &str, duration: Option<i64>) -> Value {
    let mut a = json!({
        "Subject": subject,
        "TypeName": type_name,
        "NotesPlainText": format!("notes of {subject}"),
        "ActivityDate": 1_767_261_600_000_i64,
        "GsCompanyId": company,
        "ExternalAttendees": [{"Name": "Ann", "Email": "ann@customer.example"}],
    });
    if let Some(minutes) = duration {
        a["DurationInMins"] = json!(minutes);
    }
    a
}

fn by_activity(stack: &Stack, object: &str, gsid: &str) -> Vec<serde_json::Map<String, Value>> {
    stack
        .salesforce
        .records(object)
        .into_iter()
        .filter(|r| r.get("Gainsight_Activity_Id__c").and_then(Value::as_str) == Some(gsid))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduled_timeline_sync_makes_tasks_and_events() -> Result<()> {
    // rate(4 hours) / 7200: every 2 seconds.
    let stack = Stack::start(Options {
        schedule_speedup: Some(7_200),
        ..Options::default()
    })
    .await?;
    let (company, account, contact) = customer(&stack).await?;
    let ids = stack
        .gainsight_insert_quietly(
            "activity_timeline",
            vec![
                activity(&company, "Renewal call", "Call", None),
                activity(&company, "QBR", "Meeting", Some(45)),
                activity(&company, "Lunch", "Meeting", None),
                activity(&company, "Internal note", "Milestone", None),
            ],
        )
        .await?;
    let (call, qbr, lunch, milestone) = (&ids[0], &ids[1], &ids[2], &ids[3]);

    let task = stack
        .eventually(WAIT, "the call's Task, by the schedule", || async {
            Ok(by_activity(&stack, "Task", call).pop())
        })
        .await?;
    assert_eq!(task["Subject"], json!("Renewal call"));
    assert_eq!(task["Status"], json!("Completed"));
    assert_eq!(task["Priority"], json!("Normal"));
    assert_eq!(task["WhoId"], json!(contact));
    assert_eq!(task["WhatId"], json!(account));
    assert_eq!(task["ActivityDate"], json!("2026-01-01"));
    let event = stack
        .eventually(WAIT, "the QBR's Event", || async {
            Ok(by_activity(&stack, "Event", qbr).pop())
        })
        .await?;
    assert_eq!(event["DurationInMinutes"], json!(45));
    assert_eq!(event["ActivityDateTime"], json!("2026-01-01T10:00:00.000Z"));
    assert_eq!(event["WhoId"], json!(contact));

    // The Task and Event Ids are written back onto the activities.
    for (gsid, field, id) in [
        (call, "SfTaskId", &task["Id"]),
        (qbr, "SfEventId", &event["Id"]),
    ] {
        stack
            .eventually(WAIT, "the writeback", || async {
                let record = stack.gainsight_record("activity_timeline", gsid);
                Ok(record.filter(|r| r.get(field) == Some(id)).map(|_| ()))
            })
            .await?;
    }

    // An Event without an end: Salesforce's own refusal, in the ledger.
    let failed = stack
        .eventually(WAIT, "the lunch's refusal", || async {
            let record = stack.ledger_of("activity_event", lunch).await?;
            Ok(record.filter(|r| r.error))
        })
        .await?;
    let message = failed.last_error.clone().unwrap_or_default();
    assert!(
        message.contains("REQUIRED_FIELD_MISSING") && message.contains("[DurationInMinutes]"),
        "{message}"
    );
    assert!(by_activity(&stack, "Event", lunch).is_empty());

    // A type no job takes is never read by the poll (had it been, the mapper would have
    // recorded it ignored under the first Timeline job, activity_event).
    for job in ["activity_task", "activity_event"] {
        assert!(stack.ledger_of(job, milestone).await?.is_none(), "{job}");
    }
    assert!(by_activity(&stack, "Task", milestone).is_empty());

    // Resynced (as a redelivery would): the same Task is updated, no second one.
    let resync = stack
        .invoke_resync(json!({"job": "activity_task", "ids": [call]}))
        .await?;
    assert_eq!(resync["queued"], json!(1), "{resync}");
    stack.drained(WAIT).await?;
    let record = stack
        .ledger_of("activity_task", call)
        .await?
        .context("ledger")?;
    assert!(record.synced && !record.error, "{record:?}");
    assert_eq!(record.key, LedgerKey::Gainsight(call.clone()));
    assert_eq!(by_activity(&stack, "Task", call).len(), 1, "no second Task");
    stack.stop().await;
    Ok(())
}

/// With 1,000 new activities in one window: 3 Gainsight reads (the activities, their people and
/// their companies), 5 Salesforce write calls (upserts of 200), no Salesforce read, and the Task
/// Ids written back 50 a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_window_of_1000_activities_costs_3_gainsight_reads_and_5_salesforce_writes() -> Result<()>
{
    let calls = sync_tests::activity_window::sync_window(1_000).await?;
    assert_eq!(calls.tasks, 1_000);
    assert_eq!(calls.gainsight_reads, 3, "{calls:?}");
    assert_eq!(calls.salesforce_writes, 5, "{calls:?}");
    assert_eq!(calls.salesforce_reads, 0, "{calls:?}");
    assert_eq!(calls.gainsight_writebacks, 20, "{calls:?}");
    Ok(())
}

/// An activity logged before the schedule's window is created by a backfill from a past date;
/// its attachment goes up once, linked to the Task, and a 26 MB one is skipped and said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backfill_creates_an_old_activity_with_its_attachment_once() -> Result<()> {
    use shared::ports::{CursorStore, RunStore};
    let stack = Stack::start(Options::default()).await?;
    let (company, _, _) = customer(&stack).await?;
    let notes: Vec<u8> = (0..3_000u32).map(|i| (i % 251) as u8).collect();
    let small = stack
        .gainsight
        .attach("notes.pdf", "application/pdf", notes.clone());
    let big = stack
        .gainsight
        .attach("recording.mp4", "video/mp4", vec![0; 26 * 1024 * 1024]);
    let mut email = activity(&company, "Proposal sent", "Email", None);
    email["Attachments"] = json!([small, big]);
    let gsid = stack
        .gainsight_insert_quietly("activity_timeline", vec![email])
        .await?
        .remove(0);
    let modified = stack
        .gainsight_record("activity_timeline", &gsid)
        .and_then(|r| r["ModifiedDate"].as_i64())
        .context("ModifiedDate")?;

    // The schedule has been running for a day: the activity is older than its window.
    let day = 86_400_000;
    let cursor = shared::ports::Cursor {
        timestamp_ms: modified + day,
        last_id: String::new(),
    };
    stack
        .store
        .put_cursor("activity_task", "gainsight", &cursor)
        .await?;
    let poller = stack.poller(poller::PAGE).await?;
    let scheduled = poller::PollRequest {
        job: "activity_task".into(),
        since_ms: None,
        only: None,
    };
    assert_eq!(poller.handle(scheduled).await?.queued, 0);
    let backfill = poller::PollRequest {
        job: "activity_task".into(),
        since_ms: Some(modified - day),
        only: None,
    };
    assert_eq!(poller.handle(backfill).await?.queued, 1);
    let task = stack
        .eventually(WAIT, "the backfilled Task", || async {
            Ok(by_activity(&stack, "Task", &gsid).pop())
        })
        .await;
    let task = match task {
        Ok(task) => task,
        Err(e) => return Err(e.context(stack.story("activity_task", &gsid).await)),
    };
    stack.drained(WAIT).await?;

    let files = stack.salesforce.records("ContentVersion");
    assert_eq!(
        files.len(),
        1,
        "the 26 MB file is not uploaded: {}",
        files.len()
    );
    assert_eq!(files[0]["FirstPublishLocationId"], task["Id"]);
    assert_eq!(files[0]["Title"], json!("notes.pdf"));
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode(files[0]["VersionData"].as_str().unwrap_or_default())?;
    assert_eq!(data, notes);
    let now = shared::time::now_ms();
    let mut said = None;
    for summary in stack.store.runs(now - 300_000, now).await? {
        // The listing carries counts; a run's log is read by its id (as `syncctl logs` does).
        let Some(run) = stack.store.run(&summary.id).await? else {
            continue;
        };
        said = said.or(run
            .log
            .iter()
            .filter(|l| l.record == gsid)
            .find_map(|l| l.message.clone().filter(|m| m.contains("recording.mp4"))));
    }
    assert!(
        said.as_deref()
            .is_some_and(|m| m.contains("skipped: 26.0 MB is over the 25 MB limit")),
        "{said:?}"
    );

    // Written again (a resync): the same Task, the file not uploaded a second time.
    stack
        .invoke_resync(json!({"job": "activity_task", "ids": [gsid]}))
        .await?;
    stack.drained(WAIT).await?;
    assert_eq!(by_activity(&stack, "Task", &gsid).len(), 1);
    assert_eq!(stack.salesforce.records("ContentVersion").len(), 1);

    // A pusher that died after the upload but before its ledger write left no trace of the
    // upload in the ledger: the file on the Task is found, not uploaded again.
    forget_upload(&stack, &gsid, small["Id"].as_str().unwrap_or_default()).await?;
    let ledger = stack
        .ledger_of("activity_task", &gsid)
        .await?
        .context("ledger")?;
    assert!(!ledger.fields.keys().any(|k| k.starts_with("attachment:")));
    stack
        .invoke_resync(json!({"job": "activity_task", "ids": [gsid]}))
        .await?;
    stack.drained(WAIT).await?;
    assert_eq!(stack.salesforce.records("ContentVersion").len(), 1);
    let ledger = stack
        .ledger_of("activity_task", &gsid)
        .await?
        .context("ledger")?;
    assert!(
        ledger.fields.keys().any(|k| k.starts_with("attachment:")),
        "the upload found is recorded again"
    );
    stack.stop().await;
    Ok(())
}

/// An attachment that cannot be read from Gainsight (gone since the activity listed it): the Task
/// is written and linked, and the pair shows as error naming the file and what to do, instead of
/// synced with the file silently missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attachment_that_does_not_go_up_marks_the_written_activity_error() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let (company, _, _) = customer(&stack).await?;
    let mut email = activity(&company, "Deck sent", "Email", None);
    email["Attachments"] = json!([{
        "Id": "att-removed-1", "Name": "deck.pdf", "Size": 2_000,
        "ContentType": "application/pdf", "CreatedDate": 1_767_261_600_000_i64
    }]);
    let gsid = stack
        .gainsight_insert_quietly("activity_timeline", vec![email])
        .await?
        .remove(0);
    stack
        .invoke_resync(json!({"job": "activity_task", "ids": [gsid]}))
        .await?;
    let ledger = stack
        .eventually(WAIT, "the activity's ledger record", || async {
            let ledger = stack.ledger_of("activity_task", &gsid).await?;
            Ok(ledger.filter(|l| l.synced))
        })
        .await?;
    stack.drained(WAIT).await?;
    let ledger = stack
        .ledger_of("activity_task", &gsid)
        .await?
        .unwrap_or(ledger);
    let task = by_activity(&stack, "Task", &gsid)
        .pop()
        .context("the Task")?;
    assert_eq!(
        ledger.salesforce_id.as_ref(),
        task["Id"].as_str().map(String::from).as_ref()
    );
    assert!(ledger.error, "{ledger:?}");
    let said = ledger.last_error.unwrap_or_default();
    assert!(
        said.contains("the Salesforce Task was written but attachment deck.pdf (att-removed-1) was not uploaded")
            && said.contains("syncctl resync --job activity_task --status error"),
        "{said}"
    );
    assert!(stack.salesforce.records("ContentVersion").is_empty());
    stack.stop().await;
    Ok(())
}

/// Removes the ledger's note that `attachment` of activity `gsid` went up, as a pusher that died
/// between the upload and its ledger write would have left it.
async fn forget_upload(stack: &Stack, gsid: &str, attachment: &str) -> Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    aws_sdk_dynamodb::Client::new(&stack.aws.sdk)
        .update_item()
        .table_name(&stack.resources.table_name)
        .key("pk", AttributeValue::S("LEDGER#activity_task".into()))
        .key("sk", AttributeValue::S(gsid.into()))
        .update_expression("REMOVE #uploaded")
        .expression_attribute_names("#uploaded", format!("fs#attachment:{attachment}"))
        .send()
        .await?;
    Ok(())
}

/// Real time: an activity a person logs reaches the webhook (Gainsight's rule), the mapper
/// resolves its participants for the batch, and the Task is linked like a scheduled one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logged_activity_syncs_in_real_time_with_its_participants() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    let (company, account, contact) = customer(&stack).await?;
    let gsid = stack
        .gainsight_insert(
            "activity_timeline",
            vec![activity(&company, "Escalation call", "Call", None)],
        )
        .await?
        .remove(0);
    let task = stack
        .eventually(WAIT, "the Task, through the webhook", || async {
            Ok(by_activity(&stack, "Task", &gsid).pop())
        })
        .await?;
    assert_eq!(task["WhoId"], json!(contact));
    assert_eq!(task["WhatId"], json!(account));
    assert!(stack.gainsight.stats().webhook_deliveries >= 1);
    stack.drained(WAIT).await?;
    assert_eq!(by_activity(&stack, "Task", &gsid).len(), 1);
    stack.stop().await;
    Ok(())
}
