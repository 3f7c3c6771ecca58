//! Table-driven tests of the mapping engine: every job option, each with a case that must fail.

use super::*;
use crate::domain::schema::standard_schemas;
use crate::domain::{Jobs, LedgerRecord};
use serde_json::json;

const T0: i64 = 1_700_000_000_000;

fn jobs() -> Jobs {
    Jobs::builtin()
}

fn change(source: System, object: &str, id: &str, op: Operation, fields: Value) -> ChangeEvent {
    ChangeEvent {
        event_id: format!("ev-{id}"),
        source,
        object: object.into(),
        record_id: id.into(),
        operation: op,
        occurred_at_ms: T0,
        fields: fields.as_object().cloned().unwrap(),
        changed_fields: None,
        origin: ChangeOrigin::Webhook,
        received_at_ms: T0 + 5,
        participants: None,
        load: None,
        waiting_since_ms: None,
        read: Default::default(),
        changed_by: None,
        merge: None,
    }
}

fn company(op: Operation, fields: Value) -> ChangeEvent {
    change(System::Gainsight, "Company", "1P02GS", op, fields)
}

fn account(op: Operation, fields: Value) -> ChangeEvent {
    change(
        System::Salesforce,
        "Account",
        "001000000000001AAA",
        op,
        fields,
    )
}

fn map_with(
    job: &str,
    c: &ChangeEvent,
    ledger: Option<&LedgerRecord>,
    lookups: &Lookups,
) -> MapOutcome {
    let jobs = jobs();
    let schemas = standard_schemas();
    Mapper::new(jobs.get(job).unwrap(), Some(&schemas)).map(c, ledger, lookups)
}

fn map(job: &str, c: &ChangeEvent, ledger: Option<&LedgerRecord>) -> MapOutcome {
    map_with(job, c, ledger, &Lookups::default())
}

fn write(outcome: MapOutcome) -> Vec<WriteCommand> {
    match outcome {
        MapOutcome::Write(cmds) => cmds,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn reason(outcome: &MapOutcome) -> String {
    match outcome {
        MapOutcome::Ignored { reason, .. } => format!("ignored: {reason}"),
        MapOutcome::InSync { reason, .. } => format!("in sync: {reason}"),
        MapOutcome::Presence { reason, .. } => format!("presence: {reason}"),
        MapOutcome::Rejected { reason, .. } => format!("rejected: {reason}"),
        MapOutcome::Retry { reason } => format!("retry: {reason}"),
        MapOutcome::Unresolved { reason, .. } => format!("unresolved: {reason}"),
        MapOutcome::Write(cmds) => format!("write: {:?}", cmds[0].fields),
    }
}

/// The ledger after `cmds` were written and acknowledged at `synced_at`.
fn ledger_after(cmds: &[WriteCommand], synced_at: i64) -> LedgerRecord {
    let cmd = &cmds[0];
    let mut rec = LedgerRecord {
        salesforce_id: cmd.salesforce_id.clone(),
        synced: true,
        ..LedgerRecord::new(cmd.job.clone(), cmd.ledger_key.clone())
    };
    for (k, mut s) in cmd.field_states.clone() {
        s.synced_at_ms = synced_at;
        rec.fields.insert(k, s);
    }
    match cmd.source {
        System::Gainsight => rec.gainsight_changed_at_ms = Some(cmd.source_changed_at_ms),
        System::Salesforce => rec.salesforce_changed_at_ms = Some(cmd.source_changed_at_ms),
    }
    rec
}

#[test]
fn data_flows_carry_only_their_direction() {
    // (change, field expected in the target write, field that must not be there)
    let cases = [
        (
            company(Operation::Updated, json!({"Name": "Acme", "Arr": 10})),
            "AnnualRevenue",
            "Phone",
        ),
        (
            company(Operation::Updated, json!({"Name": "Acme", "Phone": "555"})),
            "Name",
            "Phone",
        ),
        (
            account(Operation::Updated, json!({"Name": "Acme", "Phone": "555"})),
            "Phone",
            "Arr",
        ),
        (
            account(
                Operation::Updated,
                json!({"Name": "Acme", "AnnualRevenue": "10"}),
            ),
            "Name",
            "Arr",
        ),
    ];
    for (i, (c, present, absent)) in cases.iter().enumerate() {
        let cmds = write(map("company_account", c, None));
        assert_eq!(cmds.len(), 1, "case {i}");
        assert!(
            cmds[0].fields.contains_key(*present),
            "case {i}: {:?}",
            cmds[0].fields
        );
        assert!(
            !cmds[0].fields.contains_key(*absent),
            "case {i}: {:?}",
            cmds[0].fields
        );
    }
    // A field flowing only the other way never produces a write on its own.
    let outcome = map(
        "company_account",
        &account(Operation::Updated, json!({"AnnualRevenue": "10"})),
        None,
    );
    assert!(
        reason(&outcome).starts_with("ignored: no mapped field changed"),
        "{}",
        reason(&outcome)
    );
}

#[test]
fn gainsight_change_upserts_account_on_the_gsid_external_id() {
    let cmds = write(map(
        "company_account",
        &company(
            Operation::Created,
            json!({"Name": "Acme", "Arr": 1200.5, "Unmapped": 1}),
        ),
        None,
    ));
    let cmd = &cmds[0];
    assert_eq!(
        (cmd.target, cmd.object.as_str(), cmd.mode),
        (System::Salesforce, "Account", WriteMode::Upsert)
    );
    assert_eq!(
        cmd.key,
        RecordKey::ExternalId {
            field: "Gainsight_Company_Id__c".into(),
            value: "1P02GS".into()
        }
    );
    assert_eq!(
        Value::Object(cmd.fields.clone()),
        json!({"Name": "Acme", "AnnualRevenue": 1200.5, "Gainsight_Company_Id__c": "1P02GS"})
    );
    assert_eq!(cmd.ledger_key, LedgerKey::Gainsight("1P02GS".into()));
    // The Company learns its Account's Id once Salesforce answers.
    assert_eq!(
        cmd.writeback,
        Some(Writeback {
            system: System::Gainsight,
            object: "Company".into(),
            field: "SfdcAccountId".into()
        })
    );
    // Once the Company carries it, no writeback is asked again.
    let c = company(
        Operation::Updated,
        json!({"Name": "Acme", "SfdcAccountId": "001X"}),
    );
    assert_eq!(write(map("company_account", &c, None))[0].writeback, None);
}

#[test]
fn a_write_belongs_to_the_load_its_change_was_read_for() {
    let mut c = company(Operation::Updated, json!({"Name": "Acme"}));
    assert_eq!(write(map("company_account", &c, None))[0].load, None);
    c.load = Some(crate::domain::load::LoadId("run-7".into()));
    assert_eq!(
        write(map("company_account", &c, None))[0].load,
        Some(crate::domain::load::LoadId("run-7".into()))
    );
}

#[test]
fn salesforce_change_without_gsid_matches_by_identifier_and_asks_for_writeback() {
    let cmds = write(map(
        "company_account",
        &account(
            Operation::Created,
            json!({"Name": "Acme", "Phone": "555", "AnnualRevenue": "5"}),
        ),
        None,
    ));
    let cmd = &cmds[0];
    assert_eq!(cmd.target, System::Gainsight);
    assert_eq!(
        cmd.key,
        RecordKey::ExternalId {
            field: "SfdcAccountId".into(),
            value: "001000000000001AAA".into()
        }
    );
    assert_eq!(
        cmd.ledger_key,
        LedgerKey::SalesforceOnly("001000000000001AAA".into())
    );
    assert_eq!(
        cmd.writeback,
        Some(Writeback {
            system: System::Salesforce,
            object: "Account".into(),
            field: "Gainsight_Company_Id__c".into()
        })
    );
    assert_eq!(
        Value::Object(cmd.fields.clone()),
        json!({"Name": "Acme", "Phone": "555", "SfdcAccountId": "001000000000001AAA"})
    );

    // Carrying its GSID, the same Account updates the Company by GSID and needs no writeback.
    let c = account(
        Operation::Updated,
        json!({"Name": "Acme 2", "Gainsight_Company_Id__c": "1P02GS"}),
    );
    let cmd = &write(map("company_account", &c, None))[0];
    assert_eq!(
        cmd.key,
        RecordKey::Id {
            value: "1P02GS".into()
        }
    );
    assert_eq!((cmd.mode, cmd.writeback.clone()), (WriteMode::Update, None));
}

#[test]
fn person_from_salesforce_is_upserted_by_email() {
    let c = change(
        System::Salesforce,
        "Contact",
        "003000000000001AAA",
        Operation::Created,
        json!({"LastName": "Lovelace", "Email": "ada@example.com"}),
    );
    let cmd = &write(map("person_contact", &c, None))[0];
    assert_eq!(cmd.object, "Person");
    assert_eq!(
        cmd.key,
        RecordKey::ExternalId {
            field: "Email".into(),
            value: "ada@example.com".into()
        }
    );
    assert_eq!(
        cmd.fields.get("SfdcContactId"),
        Some(&json!("003000000000001AAA"))
    );
}

#[test]
fn event_actions_table() {
    use crate::domain::{OnCreated as C, OnUpdated as U};
    // (on_created, on_updated, operation, expected mode or None for ignored)
    let cases = [
        (
            C::Create,
            U::Update,
            Operation::Created,
            Some(WriteMode::Create),
        ),
        (
            C::CreateAndUpdate,
            U::Update,
            Operation::Created,
            Some(WriteMode::Upsert),
        ),
        (C::DoNothing, U::Update, Operation::Created, None),
        (
            C::DoNothing,
            U::Update,
            Operation::Updated,
            Some(WriteMode::Update),
        ),
        (C::Create, U::DoNothing, Operation::Updated, None),
        (C::Create, U::Update, Operation::Deleted, None),
    ];
    let schemas = standard_schemas();
    for (i, (on_created, on_updated, op, expected)) in cases.into_iter().enumerate() {
        let mut job = jobs().get("company_account").cloned().unwrap();
        job.events.from_gainsight.on_created = on_created;
        job.events.from_gainsight.on_updated = on_updated;
        let outcome = Mapper::new(&job, Some(&schemas)).map(
            &company(op, json!({"Name": "Acme"})),
            None,
            &Lookups::default(),
        );
        match (expected, &outcome) {
            (Some(mode), MapOutcome::Write(cmds)) => assert_eq!(cmds[0].mode, mode, "case {i}"),
            (None, MapOutcome::Ignored { reason, .. } | MapOutcome::Presence { reason, .. }) => {
                assert!(
                    reason.contains("does nothing") || reason.contains("not propagated"),
                    "case {i}: {reason}"
                )
            }
            _ => panic!("case {i}: unexpected {outcome:?}"),
        }
    }
    // Actions are per source: Salesforce's stay at their defaults.
    let outcome = map(
        "company_account",
        &account(Operation::Created, json!({"Name": "A"})),
        None,
    );
    assert_eq!(write(outcome)[0].mode, WriteMode::Upsert);
}

#[test]
fn an_update_after_a_failed_create_follows_the_create_action() {
    let failed = LedgerRecord {
        error: true,
        last_error: Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST".into()),
        ..LedgerRecord::new("company_account", LedgerKey::Gainsight("1P02GS".into()))
    };
    let fixed = company(
        Operation::Updated,
        json!({"Name": "Acme", "Industry": "Banking"}),
    );
    // company_account creates and updates on create: the fix upserts the missing Account.
    let cmds = write(map("company_account", &fixed, Some(&failed)));
    assert_eq!(cmds[0].mode, WriteMode::Upsert);
    // Once the pair synced, a later failure does not turn updates into creates.
    let synced_then_failed = LedgerRecord {
        synced: true,
        ..failed.clone()
    };
    let cmds = write(map("company_account", &fixed, Some(&synced_then_failed)));
    assert_eq!(cmds[0].mode, WriteMode::Update);
    // No ledger at all: an ordinary update stays update-only.
    assert_eq!(
        write(map("company_account", &fixed, None))[0].mode,
        WriteMode::Update
    );
}

#[test]
fn a_polled_record_never_synced_is_created_and_a_linked_one_updated_by_id() {
    let mut polled = company(Operation::Updated, json!({"Name": "Acme"}));
    polled.origin = ChangeOrigin::Poller;
    let cmds = write(map("company_account", &polled, None));
    assert_eq!(
        cmds[0].mode,
        WriteMode::Upsert,
        "a poll cannot tell a create"
    );
    // A Salesforce record read back after a hint (edited since its creation) is such a
    // snapshot too: never synced, it is created, not sent as an update with nothing to update.
    let mut read_back = account(Operation::Updated, json!({"Name": "Acme"}));
    read_back.read = crate::domain::change::Reading::Done;
    assert_eq!(
        write(map("company_account", &read_back, None))[0].mode,
        WriteMode::Upsert
    );
    read_back.read = crate::domain::change::Reading::Carried;
    assert_eq!(
        write(map("company_account", &read_back, None))[0].mode,
        WriteMode::Update
    );
    // An imported link (never synced, Salesforce Id known): the Account is addressed by its Id,
    // so no second Account is created, and it learns its GSID.
    let imported = LedgerRecord {
        salesforce_id: Some("001000000000042AAA".into()),
        ..LedgerRecord::new("company_account", LedgerKey::Gainsight("1P02GS".into()))
    };
    let cmds = write(map("company_account", &polled, Some(&imported)));
    assert_eq!(
        cmds[0].key,
        RecordKey::Id {
            value: "001000000000042AAA".into()
        }
    );
    assert_eq!(cmds[0].fields["Gainsight_Company_Id__c"], json!("1P02GS"));
}

#[test]
fn a_resync_of_a_record_never_synced_follows_the_create_action() {
    let mut forced = company(Operation::Updated, json!({"Name": "Acme"}));
    forced.origin = ChangeOrigin::Resync;
    assert_eq!(
        write(map("company_account", &forced, None))[0].mode,
        WriteMode::Upsert
    );
    let synced = LedgerRecord {
        synced: true,
        ..LedgerRecord::new("company_account", LedgerKey::Gainsight("1P02GS".into()))
    };
    let cmds = write(map("company_account", &forced, Some(&synced)));
    assert_eq!(cmds[0].mode, WriteMode::Update, "a linked pair is updated");
    // A job that does nothing on create does nothing for such a resync either.
    let mut job = jobs().get("company_account").cloned().unwrap();
    job.events.from_gainsight.on_created = crate::domain::OnCreated::DoNothing;
    let schemas = standard_schemas();
    let outcome = Mapper::new(&job, Some(&schemas)).map(&forced, None, &Lookups::default());
    assert!(
        reason(&outcome).contains("does nothing for records created"),
        "{outcome:?}"
    );
}

#[test]
fn identifier_only_changes_do_not_write() {
    let mut c = company(
        Operation::Updated,
        json!({"Name": "Acme", "SfdcAccountId": "001x"}),
    );
    c.changed_fields = Some(vec!["SfdcAccountId".into()]);
    assert!(reason(&map("company_account", &c, None)).contains("only identifiers changed"));
    c.changed_fields = Some(vec!["SfdcAccountId".into(), "Name".into()]);
    assert!(matches!(
        map("company_account", &c, None),
        MapOutcome::Write(_)
    ));
}

#[test]
fn type_checks_fail_the_record_with_the_field_named() {
    let cases = [
        (
            json!({"Name": "Acme", "Industry": "Mining"}),
            "Account.Industry: \"Mining\" is not a value of the restricted picklist",
        ),
        (
            json!({"Name": "Acme", "Employees": 12.5}),
            "Account.NumberOfEmployees: 12.5 is not a valid whole number",
        ),
        (
            json!({"Name": "x".repeat(256)}),
            "Account.Name: 256 characters, at most 255 allowed",
        ),
        (
            json!({"Name": "Acme", "Arr": "lots"}),
            "Account.AnnualRevenue: \"lots\" is not a valid currency amount",
        ),
    ];
    for (fields, expected) in cases {
        let outcome = map(
            "company_account",
            &company(Operation::Updated, fields),
            None,
        );
        let r = reason(&outcome);
        assert!(
            matches!(outcome, MapOutcome::Rejected { .. }) && r.contains(expected),
            "{r}"
        );
    }
    // The same record with valid values passes.
    let ok = company(
        Operation::Updated,
        json!({"Name": "Acme", "Industry": "Energy", "Employees": 12}),
    );
    assert!(matches!(
        map("company_account", &ok, None),
        MapOutcome::Write(_)
    ));
}

#[test]
fn salesforce_text_values_are_typed_by_the_describe() {
    let c = change(
        System::Salesforce,
        "Case",
        "500000000000001AAA",
        Operation::Created,
        json!({"Subject": "Broken", "Status": "New", "Priority": "High"}),
    );
    let cmd = &write(map("case_case", &c, None))[0];
    assert_eq!(cmd.fields.get("Status"), Some(&json!("New")));
    assert_eq!(cmd.object, "Case");
    assert_eq!(cmd.target, System::Gainsight);
}

#[test]
fn currency_objects_carry_the_amount_and_their_iso_code() {
    let c = company(
        Operation::Updated,
        json!({"Name": "Acme", "Arr": {"value": 99.5, "isoCode": "EUR", "conversionRate": 1.1}}),
    );
    // A single-currency org: the amount alone.
    let cmd = &write(map("company_account", &c, None))[0];
    assert_eq!(cmd.fields.get("AnnualRevenue"), Some(&json!(99.5)));
    assert_eq!(cmd.fields.get("CurrencyIsoCode"), None);

    // A multi-currency org: the record's CurrencyIsoCode says EUR; a code the org lacks fails.
    let jobs = jobs();
    let job = jobs.get("company_account").unwrap();
    let mut schemas = standard_schemas();
    let account = schemas.get(System::Salesforce, "Account").unwrap();
    let mut fields: Vec<crate::domain::FieldSchema> = account.fields().cloned().collect();
    fields.push(crate::domain::FieldSchema {
        picklist: vec!["USD".into(), "EUR".into()],
        restricted: true,
        ..crate::domain::FieldSchema::new("CurrencyIsoCode", crate::domain::FieldKind::Picklist)
    });
    schemas.insert(crate::domain::ObjectSchema::new(
        System::Salesforce,
        "Account",
        fields,
    ));
    let mapper = Mapper::new(job, Some(&schemas));
    let cmd = &write(mapper.map(&c, None, &Lookups::default()))[0];
    assert_eq!(cmd.fields.get("CurrencyIsoCode"), Some(&json!("EUR")));
    let yen = company(
        Operation::Updated,
        json!({"Name": "Acme", "Arr": {"value": 3, "isoCode": "JPY"}}),
    );
    let r = reason(&mapper.map(&yen, None, &Lookups::default()));
    assert!(
        r.contains("Account.CurrencyIsoCode: \"JPY\" is not a value of the restricted picklist"),
        "{r}"
    );
}

fn person(fields: Value) -> ChangeEvent {
    change(
        System::Gainsight,
        "Person",
        "1P03P1",
        Operation::Created,
        fields,
    )
}

#[test]
fn derived_lookups_table() {
    let p = person(json!({"LastName": "L", "Email": "l@x.io", "CompanyId": "1P02GS"}));
    let tuple = vec!["1P02GS".to_string()];
    // (values found, expected AccountId or error text)
    let cases: Vec<(Vec<&str>, Result<Value, &str>)> = vec![
        (vec!["001A"], Ok(json!("001A"))),
        (vec![], Err("unresolved: lookup AccountId (Account.Gainsight_Company_Id__c = CompanyId) found no Account where Gainsight_Company_Id__c = \"1P02GS\"")),
        (vec!["001A", "001B"], Err("rejected: error: lookup AccountId (Account.Gainsight_Company_Id__c = CompanyId) found 2 Account records")),
    ];
    for (i, (found, expected)) in cases.into_iter().enumerate() {
        let mut lookups = Lookups::default();
        lookups.insert(
            "person_contact",
            0,
            tuple.clone(),
            found.iter().map(|s| s.to_string()).collect(),
        );
        let outcome = map_with("person_contact", &p, None, &lookups);
        match expected {
            Ok(v) => assert_eq!(
                write(outcome)[0].fields.get("AccountId"),
                Some(&v),
                "case {i}"
            ),
            Err(text) => {
                assert!(
                    reason(&outcome).starts_with(text),
                    "case {i}: {}",
                    reason(&outcome)
                );
                // No match may still come (the Account being created): the change waits for
                // that Account; more than one never resolves by waiting.
                if let MapOutcome::Unresolved { parent, .. } = &outcome {
                    assert_eq!(
                        parent.to_string(),
                        "the Salesforce Account where Gainsight_Company_Id__c = 1P02GS"
                    );
                }
            }
        }
    }

    // A value the system refused to look up rejects its record only, saying why.
    let mut lookups = Lookups::default();
    lookups.refuse(
        "person_contact",
        0,
        tuple.clone(),
        "MALFORMED_QUERY: bad token".into(),
    );
    let outcome = map_with("person_contact", &p, None, &lookups);
    assert!(
        matches!(outcome, MapOutcome::Rejected { .. }),
        "{outcome:?}"
    );
    assert!(
        reason(&outcome).contains(
            "could not look up Gainsight_Company_Id__c = \"1P02GS\": MALFORMED_QUERY: bad token"
        ),
        "{}",
        reason(&outcome)
    );

    // Towards Gainsight the job leaves the link empty when no Company matches.
    let c = change(
        System::Salesforce,
        "Contact",
        "003000000000001AAA",
        Operation::Created,
        json!({"LastName": "L", "Email": "l@x.io", "AccountId": "001Z"}),
    );
    let cmd = &write(map("person_contact", &c, None))[0];
    assert_eq!(cmd.fields.get("CompanyId"), Some(&Value::Null));

    // use_first takes the first match instead of failing.
    let mut job = jobs().get("person_contact").cloned().unwrap();
    job.derived[1].on_multiple_matches = crate::domain::OnMultipleMatches::UseFirst;
    let mut lookups = Lookups::default();
    lookups.insert(
        "person_contact",
        1,
        vec!["001Z".into()],
        vec!["G1".into(), "G2".into()],
    );
    let schemas = standard_schemas();
    let cmd = &write(Mapper::new(&job, Some(&schemas)).map(&c, None, &lookups))[0];
    assert_eq!(cmd.fields.get("CompanyId"), Some(&json!("G1")));

    // A lookup that could not run is retried, not held against the record.
    let mut lookups = Lookups::default();
    lookups.mark_failed("person_contact", 0, "Salesforce unavailable");
    let MapOutcome::Retry { reason } = map_with("person_contact", &p, None, &lookups) else {
        panic!("retried");
    };
    assert!(
        reason.ends_with("could not run: Salesforce unavailable"),
        "{reason}"
    );
}

#[test]
fn lookups_are_one_request_per_derived_mapping_per_batch() {
    let jobs = jobs();
    let job = jobs.get("person_contact").unwrap();
    let changes: Vec<ChangeEvent> = (0..50)
        .map(|i| {
            let mut c = person(json!({"LastName": "L", "Email": format!("p{i}@x.io"), "CompanyId": format!("C{}", i % 10)}));
            c.record_id = format!("P{i}");
            c
        })
        .collect();
    let requests = Lookups::requests(changes.iter().map(|c| (job, c)), None);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].object, "Account");
    assert_eq!(
        requests[0].match_fields,
        vec!["Gainsight_Company_Id__c".to_string()]
    );
    assert_eq!(requests[0].returns, "Id");
    assert_eq!(requests[0].tuples.len(), 10, "distinct values only");
}

mod changes;
mod sides;
