//! Contract checks of the emulators with a plain HTTP client: what a real Salesforce or Gainsight
//! client library would see (paths, JSON shapes, status codes, headers, limits).

use devstack::gainsight::GainsightEmulator;
use devstack::salesforce::{Options, SalesforceEmulator};
use serde_json::{json, Value};

async fn token(http: &reqwest::Client, sf: &SalesforceEmulator) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{}/services/oauth2/token", sf.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &sf.client_id()),
            ("client_secret", &sf.client_secret()),
        ])
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await?;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], json!(sf.url()));
    Ok(body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

#[tokio::test]
async fn salesforce_contract() -> anyhow::Result<()> {
    let sf = SalesforceEmulator::start(Options::default()).await?;
    let http = reqwest::Client::new();

    let bad = http
        .post(format!("{}/services/oauth2/token", sf.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
        ])
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await?["error"], "invalid_client");

    let unauth = http
        .get(format!(
            "{}/services/data/v62.0/sobjects/Account/describe",
            sf.url()
        ))
        .send()
        .await?;
    assert_eq!(unauth.status(), 401);
    assert_eq!(
        unauth.json::<Value>().await?,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );

    let bearer = token(&http, &sf).await?;
    let describe = http
        .get(format!(
            "{}/services/data/v62.0/sobjects/Account/describe",
            sf.url()
        ))
        .bearer_auth(&bearer)
        .send()
        .await?;
    assert_eq!(describe.status(), 200);
    let limit = describe
        .headers()
        .get("sforce-limit-info")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        limit.starts_with("api-usage=") && limit.ends_with("/15000"),
        "{limit}"
    );
    let describe: Value = describe.json().await?;
    let field = |name: &str| {
        describe["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|x| x["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(field("Gainsight_Company_Id__c")["externalId"], true);
    assert_eq!(field("Health_Score__c")["calculated"], true);
    assert_eq!(field("Rich_Notes__c")["htmlFormatted"], true);
    assert_eq!(field("Name")["nillable"], false);
    assert!(field("Industry")["picklistValues"]
        .as_array()
        .is_some_and(|v| !v.is_empty()));
    for object in ["Contact", "Case"] {
        let r = http
            .get(format!(
                "{}/services/data/v62.0/sobjects/{object}/describe",
                sf.url()
            ))
            .bearer_auth(&bearer)
            .send()
            .await?;
        assert_eq!(r.status(), 200, "{object}");
    }
    let missing = http
        .get(format!(
            "{}/services/data/v62.0/sobjects/Widget__c/describe",
            sf.url()
        ))
        .bearer_auth(&bearer)
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await?[0]["errorCode"], "NOT_FOUND");

    let upsert_url = format!(
        "{}/services/data/v62.0/composite/sobjects/Account/Gainsight_Company_Id__c",
        sf.url()
    );
    let too_many: Vec<Value> = (0..201).map(|i| json!({"attributes": {"type": "Account"}, "Gainsight_Company_Id__c": format!("G{i}"), "Name": "x"})).collect();
    let r = http
        .patch(&upsert_url)
        .bearer_auth(&bearer)
        .json(&json!({"allOrNone": false, "records": too_many}))
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await?[0]["errorCode"],
        "EXCEEDED_ID_LIMIT"
    );

    // allOrNone: one bad record rolls back the good one.
    let batch = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Account"}, "Gainsight_Company_Id__c": "A1", "Name": "ok"},
        {"attributes": {"type": "Account"}, "Gainsight_Company_Id__c": "A2"}
    ]});
    let r: Value = http
        .patch(&upsert_url)
        .bearer_auth(&bearer)
        .json(&batch)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        r[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(r[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert!(sf.records("Account").is_empty());

    let not_external = http
        .patch(format!(
            "{}/services/data/v62.0/composite/sobjects/Account/Name",
            sf.url()
        ))
        .bearer_auth(&bearer)
        .json(&json!({"records": []}))
        .send()
        .await?;
    assert_eq!(not_external.status(), 400);
    assert_eq!(
        not_external.json::<Value>().await?[0]["errorCode"],
        "INVALID_FIELD"
    );

    let bad_soql = http
        .get(format!("{}/services/data/v62.0/query", sf.url()))
        .query(&[("q", "SELEC Id FROM Account")])
        .bearer_auth(&bearer)
        .send()
        .await?;
    assert_eq!(bad_soql.status(), 400);
    assert_eq!(
        bad_soql.json::<Value>().await?[0]["errorCode"],
        "MALFORMED_QUERY"
    );
    Ok(())
}

#[tokio::test]
async fn gainsight_contract() -> anyhow::Result<()> {
    let gs = GainsightEmulator::start("key").await?;
    let http = reqwest::Client::new();
    let unauth = http
        .post(format!("{}/v1/data/objects/query/Company", gs.url()))
        .json(&json!({"select": ["Gsid"]}))
        .send()
        .await?;
    assert_eq!(unauth.status(), 401);
    let body: Value = unauth.json().await?;
    assert_eq!(body["result"], false);
    assert!(body["errorDesc"].is_string() && body["requestId"].is_string());

    let fifty_one: Vec<Value> = (0..51).map(|i| json!({"Name": format!("C{i}")})).collect();
    let r = http
        .post(format!("{}/v1/data/objects/Company", gs.url()))
        .header("Accesskey", "key")
        .json(&json!({"records": fifty_one}))
        .send()
        .await?;
    assert_eq!(r.status(), 400);

    let r: Value = http
        .post(format!("{}/v1/data/objects/Company", gs.url()))
        .header("Accesskey", "key")
        .json(&json!({"records": [{"Name": "Acme", "Arr": 10}]}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(r["result"], true);
    let record = &r["data"]["records"][0];
    assert!(record["Gsid"].is_string());
    assert!(
        record["ModifiedDate"].is_i64(),
        "dates are epoch milliseconds: {record}"
    );

    let q: Value = http
        .post(format!("{}/v1/data/objects/query/Company", gs.url()))
        .header("Accesskey", "key")
        .json(&json!({
            "select": ["Gsid", "Name"],
            "where": {"conditions": [{"name": "Arr", "alias": "A", "value": [5], "operator": "GT"},
                                      {"name": "Name", "alias": "B", "value": ["Nope"], "operator": "EQ"}],
                      "expression": "A OR B"},
            "limit": 10, "offset": 0
        }))
        .send()
        .await?
        .json()
        .await?;
    // A Company query answers its rows as `data` itself.
    assert_eq!(q["data"].as_array().map(Vec::len), Some(1), "{q}");
    assert_eq!(q["data"][0]["Name"], "Acme");
    // Nothing matched: Gainsight's "no entity" error, HTTP 400.
    let none = http
        .post(format!("{}/v1/data/objects/query/Company", gs.url()))
        .header("Accesskey", "key")
        .json(&json!({
            "select": ["Gsid"],
            "where": {"conditions": [{"name": "Name", "alias": "A", "value": ["Nobody"], "operator": "EQ"}]}
        }))
        .send()
        .await?;
    assert_eq!(none.status(), 400);
    let none: Value = none.json().await?;
    assert_eq!(
        (none["result"].clone(), none["errorCode"].clone()),
        (json!(false), json!("GSOBJ_1011"))
    );

    // A lookup by one field (answered from an index) sees records updated and added since the
    // last lookup, ignores case, and not what a refused call changed before it was undone.
    let names = |q: Value| -> Vec<String> {
        (q["data"].as_array().into_iter().flatten())
            .filter_map(|r| r["Name"].as_str().map(str::to_string))
            .collect()
    };
    let lookup = |domains: Vec<&str>| {
        http.post(format!("{}/v1/data/objects/query/Company", gs.url()))
            .header("Accesskey", "key")
            .json(&json!({
                "select": ["Name"],
                "where": {"conditions": [{"name": "SfdcAccountId", "alias": "A", "value": domains, "operator": "IN"}]},
                "orderBy": {"Name": "asc"}
            }))
            .send()
    };
    let put = |records: Value| {
        http.put(format!("{}/v1/data/objects/Company?keys=Name", gs.url()))
            .header("Accesskey", "key")
            .json(&json!({ "records": records }))
            .send()
    };
    put(json!([{"Name": "Acme", "SfdcAccountId": "acme.io"}])).await?;
    assert_eq!(
        names(lookup(vec!["ACME.io"]).await?.json().await?),
        ["Acme"]
    );
    let refused = put(
        json!([{"Name": "Acme", "SfdcAccountId": "gone.io"}, {"Name": "Nobody", "SfdcAccountId": "x"}]),
    );
    assert_eq!(refused.await?.status(), 400);
    put(json!([{"Name": "Acme", "SfdcAccountId": "acme.com"}])).await?;
    http.post(format!("{}/v1/data/objects/Company", gs.url()))
        .header("Accesskey", "key")
        .json(&json!({"records": [{"Name": "Beta", "SfdcAccountId": "acme.com"}]}))
        .send()
        .await?;
    let found = lookup(vec!["acme.com", "gone.io"]).await?.json().await?;
    assert_eq!(
        names(found),
        ["Acme", "Beta"],
        "the update and the insert since, not the undone"
    );
    Ok(())
}

#[tokio::test]
async fn salesforce_create_update_and_outbound_messages() -> anyhow::Result<()> {
    use std::sync::{Arc, Mutex};
    let sf = SalesforceEmulator::start(Options::default()).await?;
    let http = reqwest::Client::new();
    let bearer = token(&http, &sf).await?;
    let collections = format!("{}/services/data/v62.0/composite/sobjects", sf.url());

    // An Outbound Message listener that refuses the first delivery, then acknowledges.
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/om",
        axum::routing::post(move |body: String| {
            let seen = seen.clone();
            async move {
                let mut seen = seen.lock().unwrap();
                seen.push(body);
                if seen.len() == 1 {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new())
                } else {
                    (axum::http::StatusCode::OK, "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>".to_string())
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/om", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    sf.add_outbound(devstack::salesforce::OutboundMessage {
        object: "Account".into(),
        url,
        fields: vec!["Name".into(), "Phone".into()],
        skip_integration_user: false,
    });

    // Create: per-record results; a duplicate external id is refused for that record only.
    let created: Value = http
        .post(&collections)
        .bearer_auth(&bearer)
        .json(&json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Account"}, "Name": "Acme & Co", "Gainsight_Company_Id__c": "G1"},
            {"attributes": {"type": "Account"}, "Name": "Twin", "Gainsight_Company_Id__c": "G1"},
        ]}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(created[0]["success"], json!(true));
    assert_eq!(created[0]["created"], json!(true));
    assert_eq!(created[1]["success"], json!(false));
    assert_eq!(created[1]["errors"][0]["statusCode"], "DUPLICATE_VALUE");
    let id = created[0]["id"].as_str().unwrap_or_default().to_string();

    // Update by Id; an unknown Id fails alone.
    let updated: Value = http
        .patch(&collections)
        .bearer_auth(&bearer)
        .json(&json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Account"}, "Id": id, "Phone": "555"},
            {"attributes": {"type": "Account"}, "Id": "001000000000000AAA", "Phone": "1"},
        ]}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        updated[0],
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    assert_eq!(
        updated[1]["errors"][0]["statusCode"],
        "INVALID_CROSS_REFERENCE_KEY"
    );
    assert_eq!(sf.records("Account")[0]["Phone"], json!("555"));

    // Two changes -> two messages; the first delivery was refused and retried until acked.
    for _ in 0..100 {
        if sf.stats().outbound_acked == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stats = sf.stats();
    assert_eq!((stats.outbound_acked, stats.outbound_failures), (2, 1));
    let bodies = received.lock().unwrap().clone();
    let first = &bodies[0];
    assert!(first.contains("<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">"));
    assert!(first.contains(&format!(
        "<OrganizationId>{}</OrganizationId>",
        devstack::salesforce::ORGANIZATION_ID
    )));
    assert!(first.contains("<sObject xsi:type=\"sf:Account\""));
    assert!(
        first.contains("<sf:Name>Acme &amp; Co</sf:Name>"),
        "{first}"
    );
    assert!(bodies
        .iter()
        .any(|b| b.contains("<sf:Phone>555</sf:Phone>")));
    Ok(())
}

#[tokio::test]
async fn gainsight_describe() -> anyhow::Result<()> {
    let gs = GainsightEmulator::start("key").await?;
    let http = reqwest::Client::new();
    let get = |object: &str| {
        http.get(format!(
            "{}/v1/meta/services/objects/{object}/describe?idd=true",
            gs.url()
        ))
        .header("Accesskey", "key")
        .send()
    };
    let body: Value = get("Case").await?.json().await?;
    assert_eq!(body["result"], json!(true));
    let fields = body["data"][0]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let subject = fields
        .iter()
        .find(|f| f["fieldName"] == "Subject")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (subject["dataType"].clone(), subject["required"].clone()),
        (json!("STRING"), json!(true))
    );
    let gsid = fields
        .iter()
        .find(|f| f["fieldName"] == "Gsid")
        .cloned()
        .unwrap_or_default();
    assert_eq!(gsid["readOnly"], json!(true));
    let missing = get("Nope").await?;
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await?["errorCode"],
        "GS_OBJECT_NOT_FOUND"
    );
    Ok(())
}

/// Faults at their rates: a throttled call is refused with a Retry-After and not applied; a lost
/// answer is applied yet answered 504; an expired session is a 401; each is counted.
#[tokio::test]
async fn fault_rates_refuse_or_lose_answers_and_count_them() -> anyhow::Result<()> {
    use devstack::chaos::FaultRates;
    let sf = SalesforceEmulator::start(Options::default()).await?;
    let http = reqwest::Client::new();
    let bearer = token(&http, &sf).await?;
    let create = |name: &str| {
        http.post(format!(
            "{}/services/data/v62.0/sobjects/Account/",
            sf.url()
        ))
        .bearer_auth(&bearer)
        .json(&json!({ "Name": name }))
        .send()
    };
    sf.set_fault_rates(FaultRates {
        throttled: 1.0,
        ..Default::default()
    });
    let refused = create("Throttled").await?;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert!(sf.records("Account").is_empty(), "not applied");

    sf.set_fault_rates(FaultRates {
        lost_answer: 1.0,
        ..Default::default()
    });
    assert_eq!(create("Lost").await?.status(), 504);
    assert_eq!(
        sf.records("Account").len(),
        1,
        "applied, though the answer was lost"
    );

    sf.set_fault_rates(FaultRates {
        expired_session: 1.0,
        ..Default::default()
    });
    assert_eq!(create("Expired").await?.status(), 401);
    let counts = sf.fault_counts();
    assert_eq!(
        (
            counts.throttled,
            counts.lost_answers,
            counts.expired_sessions
        ),
        (1, 1, 1)
    );

    let gs = GainsightEmulator::start("k").await?;
    gs.set_fault_rates(FaultRates {
        unavailable: 1.0,
        ..Default::default()
    });
    let refused = http
        .post(format!("{}/v1/data/objects/Company", gs.url()))
        .header("Accesskey", "k")
        .json(&json!({"records": [{"Name": "A"}]}))
        .send()
        .await?;
    assert_eq!(refused.status(), 503);
    assert!(gs.records("Company").is_empty());
    assert_eq!(gs.fault_counts().unavailable, 1);
    Ok(())
}

/// A person's delete, undelete and merge through the emulator's own endpoints, as `make up`
/// users drive them by hand: `query` no longer sees what was deleted or merged, `queryAll`
/// sees it with `IsDeleted` and the merged record's `MasterRecordId`.
#[tokio::test]
async fn salesforce_user_deletes_undeletes_and_merges() -> anyhow::Result<()> {
    let sf = SalesforceEmulator::start(Options::default()).await?;
    let http = reqwest::Client::new();
    let names = ["Master", "Loser", "Gone"].map(|n| json!({ "Name": n }));
    let ids = sf.seed(
        "Account",
        names
            .iter()
            .map(|v| v.as_object().cloned().unwrap_or_default())
            .collect(),
    );
    let post =
        |path: String, body: Value| http.post(format!("{}{path}", sf.url())).json(&body).send();
    let merged = post(
        "/__emulator/merge/Account".into(),
        json!({"master": ids[0], "losers": [ids[1]]}),
    )
    .await?;
    assert_eq!(merged.json::<Value>().await?, json!({"merged": 1}));
    let deleted = post(
        format!("/__emulator/records/Account/{}/delete", ids[2]),
        json!({}),
    )
    .await?;
    assert_eq!(deleted.status(), 204);
    let missing = post(
        "/__emulator/records/Account/001000000000000AAA/delete".into(),
        json!({}),
    )
    .await?;
    assert_eq!(missing.status(), 404);
    let bearer = token(&http, &sf).await?;
    let soql = "SELECT Id, IsDeleted, MasterRecordId FROM Account ORDER BY Name";
    let rows = |endpoint: &'static str| {
        let request = http
            .get(format!("{}/services/data/v62.0/{endpoint}", sf.url()))
            .query(&[("q", soql)])
            .bearer_auth(&bearer);
        async move { anyhow::Ok(request.send().await?.json::<Value>().await?["records"].clone()) }
    };
    let live = rows("query").await?;
    assert_eq!(live.as_array().map(Vec::len), Some(1), "{live}");
    let all = rows("queryAll").await?;
    assert_eq!(all[1]["Id"], json!(ids[1]), "{all}");
    assert_eq!(
        (&all[1]["IsDeleted"], &all[1]["MasterRecordId"]),
        (&json!(true), &json!(ids[0]))
    );
    assert_eq!(all[0]["IsDeleted"], json!(true), "Gone: {all}");
    let restored = post(
        format!("/__emulator/records/Account/{}/undelete", ids[2]),
        json!({}),
    )
    .await?;
    assert_eq!(restored.status(), 204);
    assert_eq!(rows("query").await?.as_array().map(Vec::len), Some(2));
    Ok(())
}

/// A record created through `sobjects/{object}` while change events are relayed: the answer
/// comes (the org's lock is released before the event goes out, which takes it again; with it
/// held, every later request of the emulator hung). The emulator runs on a runtime of its own
/// thread, so that a hang fails the test after 30 s instead of stalling it.
#[test]
fn salesforce_single_record_create_with_the_relay_on_answers() {
    let (done, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let result = runtime.block_on(create_with_the_relay_on());
        let _ = done.send(result.map_err(|e| e.to_string()));
    });
    match answer.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(result) => result.expect("created"),
        Err(_) => panic!("the emulator did not answer within 30 s: a request hung"),
    }
}

async fn create_with_the_relay_on() -> anyhow::Result<()> {
    let sf = SalesforceEmulator::start(Options::default()).await?;
    sf.relay_to(devstack::salesforce::Relay {
        endpoint: "http://127.0.0.1:9".into(),
        bus: "aws.partner/salesforce.com/00D/0YL".into(),
    });
    let http = reqwest::Client::new();
    let bearer = token(&http, &sf).await?;
    let create = http
        .post(format!("{}/services/data/v62.0/sobjects/Account", sf.url()))
        .bearer_auth(&bearer)
        .json(&json!({"Name": "Acme"}))
        .send()
        .await?;
    assert_eq!(create.status(), 201);
    let stats = http
        .get(format!("{}/__emulator/stats", sf.url()))
        .send()
        .await?;
    assert_eq!(stats.status(), 200, "the emulator still answers");
    Ok(())
}

/// Writes change the object's records in place: an allOrNone call that fails puts back the
/// records it had updated and takes out those it had created, and a call that succeeds keeps
/// both.
#[tokio::test]
async fn salesforce_undoes_a_failed_all_or_none_update_of_records_already_there(
) -> anyhow::Result<()> {
    let sf = SalesforceEmulator::start(Options::default()).await?;
    let record = |v: Value| v.as_object().cloned().unwrap_or_default();
    sf.seed_quietly(
        "Account",
        vec![record(
            json!({"Name": "Before", "Gainsight_Company_Id__c": "A0"}),
        )],
    );
    let http = reqwest::Client::new();
    let bearer = token(&http, &sf).await?;
    let url = format!(
        "{}/services/data/v62.0/composite/sobjects/Account/Gainsight_Company_Id__c",
        sf.url()
    );
    let call = |name: &str, second: Value| {
        let batch = json!({"allOrNone": true, "records": [
            {"attributes": {"type": "Account"}, "Gainsight_Company_Id__c": "A0", "Name": name},
            second
        ]});
        http.patch(&url).bearer_auth(&bearer).json(&batch).send()
    };
    let bad = json!({"attributes": {"type": "Account"}, "Gainsight_Company_Id__c": "A2"});
    let ok =
        json!({"attributes": {"type": "Account"}, "Gainsight_Company_Id__c": "A1", "Name": "New"});
    let names = || {
        let mut names: Vec<Value> = (sf.records("Account").iter())
            .map(|r| r["Name"].clone())
            .collect();
        names.sort_by_key(|n| n.to_string());
        names
    };
    call("After", ok).await?.error_for_status()?;
    let both = names();
    assert_eq!(both, [json!("After"), json!("New")], "kept");
    call("Undone", bad).await?.error_for_status()?;
    assert_eq!(names(), both, "the failed call undone");
    Ok(())
}
