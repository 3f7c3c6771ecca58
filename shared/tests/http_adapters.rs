//! Integration tests of the Salesforce and Gainsight clients against the emulators, which follow
//! the public API contracts (and were written without this crate's types).

use anyhow::Result;
use devstack::gainsight::{self as gs, GainsightEmulator};
use devstack::salesforce::{self as sf, SalesforceEmulator};
use serde_json::json;
use shared::adapters::gainsight::GainsightClient;
use shared::adapters::salesforce::SalesforceClient;
use shared::config::{GainsightSettings, SalesforceSettings};
use shared::domain::budget::ApiUsage;
use shared::domain::Fields;
use shared::ports::{
    ApiError, GainsightApi, GsCondition, GsOperator, GsQuery, Retryable, SalesforceApi, SfSelect,
};
use shared::secret::Secret;

fn fields(v: serde_json::Value) -> Fields {
    v.as_object().cloned().expect("object")
}

async fn salesforce() -> Result<(SalesforceEmulator, SalesforceClient)> {
    let emu = SalesforceEmulator::start(sf::Options::default()).await?;
    let client = SalesforceClient::new(
        SalesforceSettings {
            login_url: emu.url(),
            client_id: emu.client_id(),
            api_version: "62.0".into(),
            auth: Default::default(),
        },
        Secret::new(emu.client_secret()),
    );
    Ok((emu, client))
}

#[tokio::test]
async fn salesforce_upserts_in_collections_of_200_and_reports_each_record() -> Result<()> {
    let (emu, client) = salesforce().await?;
    let records: Vec<Fields> = (0..450)
        .map(|i| fields(json!({"Gainsight_Company_Id__c": format!("G{i}"), "Name": format!("Co {i}"), "AnnualRevenue": i})))
        .collect();
    let results = client
        .upsert("Account", "Gainsight_Company_Id__c", &records)
        .await?;
    assert_eq!(results.len(), 450);
    assert!(results.iter().all(|r| r.success
        && r.created
        && r.id
            .as_deref()
            .is_some_and(|id| id.starts_with("001") && id.len() == 18)));
    assert_eq!(emu.stats().upsert_calls, 3, "450 records = 200 + 200 + 50");
    assert_eq!(emu.stats().token_requests, 1, "one token for all calls");

    // Same external ids again: updates, not duplicates.
    let again = client
        .upsert("Account", "Gainsight_Company_Id__c", &records[..10])
        .await?;
    assert!(again.iter().all(|r| r.success && !r.created));
    assert_eq!(again[3].id, results[3].id);
    assert_eq!(emu.records("Account").len(), 450);

    // One bad record fails alone, with Salesforce's code and message.
    let mixed = vec![
        fields(json!({"Gainsight_Company_Id__c": "G1", "Industry": "Banking"})),
        fields(json!({"Gainsight_Company_Id__c": "G2", "Industry": "Underwater Basket Weaving"})),
        fields(json!({"Gainsight_Company_Id__c": "NEW", "AnnualRevenue": 5})),
        fields(json!({"Gainsight_Company_Id__c": "G3", "Health_Score__c": 5})),
    ];
    let r = client
        .upsert("Account", "Gainsight_Company_Id__c", &mixed)
        .await?;
    assert!(r[0].success);
    assert!(
        !r[1].success && r[1].errors[0].starts_with("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        "{:?}",
        r[1]
    );
    assert!(
        !r[2].success && r[2].errors[0].contains("Required fields are missing: [Name]"),
        "{:?}",
        r[2]
    );
    assert!(
        !r[3].success && r[3].errors[0].starts_with("INVALID_FIELD_FOR_INSERT_UPDATE"),
        "{:?}",
        r[3]
    );
    Ok(())
}

/// An update of a record that is not there says so per record (`gone`), unlike a refused value
/// or a bad reference on a record that is there.
#[tokio::test]
async fn an_update_of_a_missing_record_says_it_is_gone() -> Result<()> {
    let (emu, client) = salesforce().await?;
    let created = client
        .upsert(
            "Account",
            "Gainsight_Company_Id__c",
            &[fields(
                json!({"Gainsight_Company_Id__c": "G1", "Name": "Here"}),
            )],
        )
        .await?;
    let here = created[0].id.clone().expect("an Id");
    let results = client
        .update(
            "Account",
            &[
                fields(json!({"Id": here, "Phone": "1"})),
                fields(json!({"Id": "001000000000000AAA", "Phone": "2"})),
                fields(json!({"Id": here, "Industry": "Underwater Basket Weaving"})),
            ],
        )
        .await?;
    let gone: Vec<(bool, bool)> = results.iter().map(|r| (r.success, r.gone)).collect();
    assert_eq!(
        gone,
        [(true, false), (false, true), (false, false)],
        "{results:?}"
    );
    // A record a user deleted is in the Recycle Bin: its update is refused as deleted.
    assert!(emu.delete("Account", &here));
    let results = client
        .update("Account", &[fields(json!({"Id": here, "Phone": "3"}))])
        .await?;
    assert!(!results[0].success && results[0].gone, "{results:?}");
    let said = results[0].errors.join("; ");
    assert!(said.starts_with("ENTITY_IS_DELETED"), "{said}");

    let (_gemu, gs) = gainsight().await?;
    let missing = gs
        .update(
            "Company",
            &["Gsid".to_string()],
            &[fields(json!({"Gsid": "1P02NOTHERE", "Name": "x"}))],
        )
        .await?;
    assert!(!missing[0].success && missing[0].gone, "{missing:?}");
    Ok(())
}

/// Accounts' `fields` where `conditions` hold, ordered by name.
fn accounts(fields: &[&str], conditions: Vec<(String, Vec<String>)>) -> SfSelect {
    SfSelect {
        object: "Account".into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        conditions,
        order_by: vec!["Name".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn salesforce_query_follows_next_records_url() -> Result<()> {
    let (emu, client) = salesforce().await?;
    emu.seed(
        "Account",
        (0..2500)
            .map(|i| fields(json!({"Name": format!("Seeded {i:04}")})))
            .collect(),
    );
    let before = emu.stats().query_calls;
    let rows = client.select(&accounts(&["Id", "Name"], vec![])).await?;
    assert_eq!(rows.len(), 2500);
    assert_eq!(emu.stats().query_calls - before, 2, "2000 + 500");
    assert_eq!(rows[0]["Name"], json!("Seeded 0000"));
    assert!(
        rows[0].get("attributes").is_none(),
        "attributes are stripped"
    );
    let named = vec![("Name".to_string(), vec!["O'Hare".to_string()])];
    let quoted = client.select(&accounts(&["Id"], named)).await?;
    assert!(quoted.is_empty());
    let err = client
        .select(&accounts(&["Nope"], vec![]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiError::Rejected { code, .. } if code == "INVALID_FIELD"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn salesforce_query_all_sees_deleted_and_merged_records() -> Result<()> {
    let (emu, client) = salesforce().await?;
    let named = |n: usize| (0..n).map(|i| fields(json!({"Name": format!("Dup {i:04}")})));
    let ids = emu.seed("Account", named(2003).collect());
    let (master, losers) = (ids[0].clone(), ids[1..3].to_vec());
    emu.merge("Account", &master, &losers);
    emu.delete("Account", &ids[3]);
    let wanted = vec![("Id".to_string(), ids[..5].to_vec())];
    let mut select = accounts(&["Id", "IsDeleted", "MasterRecordId"], wanted);
    let live = client.select(&select).await?;
    assert_eq!(
        live.len(),
        2,
        "query sees neither the merged nor the deleted records"
    );
    select.include_deleted = true;
    let all = client.select(&select).await?;
    assert_eq!(all.len(), 5, "queryAll sees the Recycle Bin too");
    let row = |id: &str| all.iter().find(|r| r["Id"] == json!(id)).cloned();
    let loser = row(&losers[0]).expect("a merged record is found");
    assert_eq!(loser["IsDeleted"], json!(true));
    assert_eq!(loser["MasterRecordId"], json!(master));
    let deleted = row(&ids[3]).expect("a deleted record is found");
    assert_eq!(
        deleted["MasterRecordId"],
        json!(null),
        "deleted, not merged"
    );
    assert_eq!(row(&master).expect("master")["IsDeleted"], json!(false));
    // Pages of queryAll follow its own nextRecordsUrl.
    let every = SfSelect {
        include_deleted: true,
        ..accounts(&["Id"], vec![])
    };
    let before = emu.stats().query_calls;
    assert_eq!(client.select(&every).await?.len(), 2003);
    assert_eq!(emu.stats().query_calls - before, 2, "2000 + 3");
    Ok(())
}

#[tokio::test]
async fn salesforce_recovers_from_expired_sessions_and_transient_faults() -> Result<()> {
    let (emu, client) = salesforce().await?;
    let rec = vec![fields(
        json!({"Gainsight_Company_Id__c": "G1", "Name": "A"}),
    )];
    client
        .upsert("Account", "Gainsight_Company_Id__c", &rec)
        .await?;
    emu.expire_tokens();
    client
        .upsert("Account", "Gainsight_Company_Id__c", &rec)
        .await?;
    assert_eq!(
        emu.stats().token_requests,
        2,
        "401 INVALID_SESSION_ID leads to one new token"
    );

    // The session renewed is refused too (a fault of the org's, the token endpoint having
    // granted it): worth trying again, never a refusal of the credentials that stops the job.
    emu.inject(sf::Fault::status(
        401,
        "INVALID_SESSION_ID",
        "Session expired or invalid",
        2,
    ));
    let again = client
        .upsert("Account", "Gainsight_Company_Id__c", &rec)
        .await;
    assert!(
        matches!(
            &again,
            Ok(_) | Err(ApiError::Unavailable { status: 401, .. })
        ),
        "{again:?}"
    );

    emu.inject(sf::Fault::status(503, "SERVER_UNAVAILABLE", "try later", 2));
    let calls = emu.stats().api_calls;
    client
        .upsert("Account", "Gainsight_Company_Id__c", &rec)
        .await?;
    assert_eq!(
        emu.stats().api_calls - calls,
        3,
        "two failed tries, then success"
    );

    emu.inject(sf::Fault::status(
        403,
        "REQUEST_LIMIT_EXCEEDED",
        "TotalRequests Limit exceeded.",
        10,
    ));
    let err = client
        .upsert("Account", "Gainsight_Company_Id__c", &rec)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::RateLimited { .. }), "{err}");
    Ok(())
}

/// A fault that answers `status`/`code` `times` times, with a `Retry-After` when given.
fn sf_status(status: u16, code: &str, times: u32, retry_after: Option<u64>) -> sf::Fault {
    sf::Fault::status(status, code, &format!("injected {code}"), times)
        .with_retry_after(retry_after)
}

/// Each class of failure as Salesforce sends it, and what the client does with it: waits out a
/// 429's or a 503's `Retry-After`, retries timeouts, hands row locks back as retryable per
/// record, and never retries what a retry cannot fix.
#[tokio::test]
async fn salesforce_retries_each_class_as_it_deserves() -> Result<()> {
    let (emu, client) = salesforce().await?;
    let client = client.with_request_timeout(std::time::Duration::from_millis(300));
    let one = |id: &str| vec![fields(json!({"Gainsight_Company_Id__c": id, "Name": id}))];
    client
        .upsert("Account", "Gainsight_Company_Id__c", &one("warm"))
        .await?;

    for (status, code) in [(429, "REQUEST_LIMIT_EXCEEDED"), (503, "SERVER_UNAVAILABLE")] {
        emu.inject(sf_status(status, code, 1, Some(1)));
        let calls = emu.stats().api_calls;
        let started = std::time::Instant::now();
        let saved = client
            .upsert("Account", "Gainsight_Company_Id__c", &one(code))
            .await?;
        assert!(saved[0].success, "{saved:?}");
        assert_eq!(
            emu.stats().api_calls - calls,
            2,
            "{status}: one refusal, one success"
        );
        assert!(
            started.elapsed() >= std::time::Duration::from_secs(1),
            "{status}: the retry waited for the 1 s Retry-After, not {:?}",
            started.elapsed()
        );
    }

    // A Retry-After longer than a call may wait fails at once, keeping the wait for the queue.
    emu.inject(sf_status(503, "SERVER_UNAVAILABLE", 1, Some(120)));
    let calls = emu.stats().api_calls;
    let err = client
        .upsert("Account", "Gainsight_Company_Id__c", &one("long"))
        .await
        .unwrap_err();
    assert_eq!(
        emu.stats().api_calls - calls,
        1,
        "not retried within the call"
    );
    assert_eq!(
        err.retry_after(),
        Some(std::time::Duration::from_secs(120)),
        "{err}"
    );

    // Slow answers: every try times out, four in all, and the error says it was a timeout.
    emu.inject(sf::Fault::Delay {
        ms: 1_000,
        times: 4,
    });
    let calls = emu.stats().api_calls;
    let err = client
        .upsert("Account", "Gainsight_Company_Id__c", &one("slow"))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Timeout { .. }), "{err}");
    assert_eq!(
        emu.stats().api_calls - calls,
        4,
        "the first try and three retries"
    );

    // A locked row is the record's own, retryable outcome (the queue tries it again).
    emu.inject(sf::Fault::LockRows { times: 1 });
    let saved = client
        .upsert("Account", "Gainsight_Company_Id__c", &one("locked"))
        .await?;
    assert!(!saved[0].success && saved[0].retryable, "{saved:?}");
    assert!(
        saved[0].errors[0].starts_with("UNABLE_TO_LOCK_ROW"),
        "{saved:?}"
    );

    // Permanent refusals: one call, not retryable.
    let calls = emu.stats().api_calls;
    let created = client.create("Account", &one("warm")).await?;
    assert!(!created[0].success && !created[0].retryable, "{created:?}");
    assert!(
        created[0].errors[0].starts_with("DUPLICATE_VALUE"),
        "{created:?}"
    );
    emu.inject(sf_status(400, "INVALID_FIELD", 1, None));
    let err = client
        .upsert("Account", "Gainsight_Company_Id__c", &one("bad"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::Rejected { .. }) && !err.is_retryable(),
        "{err}"
    );
    assert_eq!(emu.stats().api_calls - calls, 2, "each refusal sent once");
    Ok(())
}

#[tokio::test]
async fn salesforce_bad_credentials_are_an_auth_error() -> Result<()> {
    let emu = SalesforceEmulator::start(sf::Options::default()).await?;
    let client = SalesforceClient::new(
        SalesforceSettings {
            login_url: emu.url(),
            client_id: emu.client_id(),
            api_version: "62.0".into(),
            auth: Default::default(),
        },
        Secret::new("wrong"),
    );
    let err = client.select(&accounts(&["Id"], vec![])).await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Auth { message, .. } if message.contains("invalid_client")),
        "{err}"
    );
    Ok(())
}

async fn gainsight() -> Result<(GainsightEmulator, GainsightClient)> {
    let emu = GainsightEmulator::start("gs-access-key").await?;
    let client = GainsightClient::new(
        GainsightSettings {
            base_url: emu.url(),
        },
        Secret::new("gs-access-key"),
    );
    Ok((emu, client))
}

#[tokio::test]
async fn gainsight_writes_in_fifties_and_queries_with_paging() -> Result<()> {
    let (emu, client) = gainsight().await?;
    let records: Vec<Fields> = (0..120)
        .map(|i| fields(json!({"Name": format!("Co {i:03}"), "Arr": i * 100})))
        .collect();
    let results = client.insert("Company", &records).await?;
    assert_eq!(results.len(), 120);
    assert!(results.iter().all(|r| r.success && r.id.is_some()));
    assert_eq!(emu.stats().write_calls, 3, "120 records = 50 + 50 + 20");

    let gsid = results[7].id.clone().unwrap();
    let updated = client
        .update(
            "Company",
            &["Gsid".into()],
            &[fields(json!({"Gsid": gsid, "Arr": 999}))],
        )
        .await?;
    assert!(updated[0].success);
    let q = GsQuery {
        select: vec!["Gsid".into(), "Name".into(), "Arr".into()],
        conditions: vec![GsCondition::new("Arr", GsOperator::Gte, vec![json!(5000)])],
        order_by: vec![("Name".into(), true)],
        limit: 0,
        any_of: Vec::new(),
        offset: 0,
    };
    let rows = client.query("Company", &q).await?;
    assert_eq!(rows.len(), 70, "Arr 5000..11900");
    let page = GsQuery {
        limit: 20,
        offset: 60,
        ..q.clone()
    };
    let tail = client.query("Company", &page).await?;
    assert_eq!(
        tail,
        rows[60..].to_vec(),
        "a page from an offset: the 10 left"
    );
    let one = client
        .query(
            "Company",
            &GsQuery {
                select: vec!["Arr".into()],
                conditions: vec![GsCondition::new("Gsid", GsOperator::Eq, vec![json!(gsid)])],
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(one[0]["Arr"], json!(999));
    // A query that matches nothing: Gainsight answers GSOBJ_1011, which is zero rows.
    let none = client
        .query(
            "Company",
            &GsQuery {
                select: vec!["Gsid".into()],
                conditions: vec![GsCondition::new(
                    "Name",
                    GsOperator::Eq,
                    vec![json!("No Such Company")],
                )],
                ..Default::default()
            },
        )
        .await?;
    assert!(none.is_empty());

    // Gainsight refuses a whole call for one invalid record; the client then sends each record
    // alone so only the invalid one fails (1 refused call + 2 single ones).
    let calls_before = emu.stats().write_calls;
    let bad = client
        .insert(
            "Company",
            &[
                fields(json!({"Name": "ok"})),
                fields(json!({"Name": "x", "Bogus": 1})),
            ],
        )
        .await?;
    assert!(bad[0].success && bad[0].id.is_some(), "{bad:?}");
    assert!(
        !bad[1].success && bad[1].errors[0].contains("records[0]: Invalid field Bogus"),
        "{bad:?}"
    );
    assert_eq!(emu.stats().write_calls - calls_before, 3);
    Ok(())
}

#[tokio::test]
async fn gainsight_retries_rate_limits_and_reports_bad_keys() -> Result<()> {
    let (emu, client) = gainsight().await?;
    emu.inject(gs::Fault::Status {
        status: 429,
        times: 1,
    });
    let rows = client
        .query(
            "Company",
            &GsQuery {
                select: vec!["Gsid".into()],
                ..Default::default()
            },
        )
        .await?;
    assert!(rows.is_empty());
    assert_eq!(emu.stats().api_calls, 2, "one 429, one success");

    // A limit that does not clear: three more tries, each after the Retry-After Gainsight sent
    // (1 s), then an error that says so and keeps the wait for whoever retries next.
    emu.inject(gs::Fault::Status {
        status: 429,
        times: 10,
    });
    let err = client
        .query(
            "Company",
            &GsQuery {
                select: vec!["Gsid".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::RateLimited {
                retry_after_ms: Some(1000),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(emu.stats().api_calls, 6, "the first try and three retries");

    let wrong = GainsightClient::new(
        GainsightSettings {
            base_url: emu.url(),
        },
        Secret::new("nope"),
    );
    let err = wrong
        .query(
            "Company",
            &GsQuery {
                select: vec!["Gsid".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Auth { .. }), "{err}");
    Ok(())
}

/// Gainsight's gateway limit: every answer says how much of the window is left, which the client
/// keeps for the pusher's budget; a call over the limit waits out the 429's Retry-After (the
/// rest of the window) and then goes through.
#[tokio::test]
async fn gainsight_reports_its_window_and_waits_out_the_limit() -> Result<()> {
    let (emu, client) = gainsight().await?;
    assert_eq!(client.window_usage(), None, "nothing seen before a call");
    emu.set_rate_limit(gs::RateLimit {
        calls: 3,
        window_ms: 2_000,
    });
    let query = GsQuery {
        select: vec!["Gsid".into()],
        ..Default::default()
    };
    client.query("Company", &query).await?;
    let seen = client.window_usage().expect("the headers were read");
    assert_eq!(seen.usage, ApiUsage { used: 1, max: 3 });
    client.query("Company", &query).await?;
    client.query("Company", &query).await?;
    assert_eq!(client.window_usage().map(|w| w.usage.used), Some(3));
    let started = std::time::Instant::now();
    client.query("Company", &query).await?;
    assert_eq!(
        emu.stats().rate_limited_calls,
        1,
        "one refusal, then the new window"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "waited for the Retry-After, not {:?}",
        started.elapsed()
    );
    assert_eq!(client.window_usage().map(|w| w.usage.used), Some(1));
    Ok(())
}

/// A create whose answer is lost (applied, then a 504) is not sent again within the call: the
/// error goes back to the queue, whose next delivery looks for the record before creating it.
/// Updates, which are idempotent, are tried again.
#[tokio::test]
async fn a_create_with_a_lost_answer_is_not_sent_twice() -> Result<()> {
    let (emu, client) = gainsight().await?;
    emu.set_fault_rates(devstack::chaos::FaultRates {
        lost_answer: 1.0,
        ..Default::default()
    });
    let company = vec![fields(json!({"Name": "Once"}))];
    let err = client.insert("Company", &company).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Unavailable { status: 504, .. }),
        "{err}"
    );
    assert_eq!(emu.records("Company").len(), 1, "created once");
    assert_eq!(emu.stats().api_calls, 1, "not sent again");

    let (sf, sf_client) = salesforce().await?;
    sf.set_fault_rates(devstack::chaos::FaultRates {
        lost_answer: 1.0,
        ..Default::default()
    });
    let account = vec![fields(json!({"Name": "Once"}))];
    let calls = sf.stats().api_calls;
    assert!(sf_client.create("Account", &account).await.is_err());
    assert_eq!(sf.records("Account").len(), 1, "created once");
    assert_eq!(sf.stats().api_calls - calls, 1, "not sent again");
    Ok(())
}

/// An attachment is read a chunk at a time and never past the 25 MB Salesforce takes, whatever
/// size the activity claimed: a file that turns out larger is refused, not held.
#[tokio::test]
async fn an_attachment_larger_than_it_claimed_is_not_read_past_25_mb() -> Result<()> {
    use shared::domain::timeline::{Attachment, MAX_ATTACHMENT_BYTES};
    use shared::ports::ActivityFiles as _;
    let (emu, client) = gainsight().await?;
    let small = emu.attach("notes.txt", "text/plain", b"hello".to_vec());
    let big = emu.attach(
        "huge.bin",
        "application/octet-stream",
        vec![7u8; MAX_ATTACHMENT_BYTES as usize + 1],
    );
    let claimed = |entry: &serde_json::Value| Attachment {
        id: entry["Id"].as_str().unwrap_or_default().to_string(),
        name: entry["Name"].as_str().unwrap_or_default().to_string(),
        // What the activity claims: small, whatever the file is.
        size: 5,
        content_type: String::new(),
        created_ms: 0,
    };
    assert_eq!(client.download(&claimed(&small)).await?, b"hello");
    let refused = client.download(&claimed(&big)).await.unwrap_err();
    assert!(
        refused.to_string().contains("larger than the 25 MB"),
        "{refused}"
    );
    Ok(())
}
