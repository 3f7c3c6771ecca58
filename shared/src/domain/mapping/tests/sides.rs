//! When both sides move: echoes of the sync's own writes, a change whose write is still on its
//! way, resyncs, stale changes per source clock and the conflict rules.

use super::*;

#[test]
fn echoes_of_our_own_writes_are_ignored() {
    // Gainsight -> Salesforce, then Salesforce's echo of the same values.
    let cmds = write(map(
        "company_account",
        &company(
            Operation::Updated,
            json!({"Name": "Acme", "Industry": "Energy"}),
        ),
        None,
    ));
    let ledger = ledger_after(&cmds, T0 + 100);
    let echo = account(
        Operation::Updated,
        json!({"Name": "Acme", "Industry": "Energy", "Gainsight_Company_Id__c": "1P02GS"}),
    );
    let mut echo = echo;
    echo.occurred_at_ms = T0 + 100;
    let outcome = map("company_account", &echo, Some(&ledger));
    assert!(
        reason(&outcome).starts_with("in sync: no mapped field changed"),
        "{}",
        reason(&outcome)
    );

    // A real change on the Salesforce side after the sync does write, and only what changed.
    let mut edit = account(
        Operation::Updated,
        json!({"Name": "Acme Corp", "Industry": "Energy", "Gainsight_Company_Id__c": "1P02GS"}),
    );
    edit.occurred_at_ms = T0 + 200;
    let cmds = write(map("company_account", &edit, Some(&ledger)));
    assert_eq!(
        Value::Object(cmds[0].fields.clone()),
        json!({"Name": "Acme Corp", "SfdcAccountId": "001000000000001AAA"})
    );
    // The fields found unchanged go along unwritten, for the pusher to tell again.
    let kept: Vec<&String> = cmds[0].unchanged.keys().collect();
    assert_eq!(kept, ["Industry"]);
    assert_eq!(cmds[0].unchanged["Industry"].value, json!("Energy"));

    // Numbers come back from Salesforce as text in an Outbound Message; still an echo.
    let cmds = write(map(
        "company_account",
        &company(Operation::Updated, json!({"Name": "A", "Employees": 12})),
        None,
    ));
    let ledger = ledger_after(&cmds, T0 + 100);
    let c = company(Operation::Updated, json!({"Name": "A", "Employees": 12.0}));
    assert!(matches!(
        map("company_account", &c, Some(&ledger)),
        MapOutcome::InSync { .. }
    ));
}

/// A field set and set back: the second change finds every value as last synced, but the first
/// change's write is still on its way (the ledger notes it was queued and has not landed), so
/// the second goes too, with nothing to write and every field carried as unchanged.
#[test]
fn a_change_that_finds_nothing_changed_goes_along_while_an_earlier_one_is_on_its_way() {
    let synced = company(
        Operation::Updated,
        json!({"Name": "Acme", "Industry": "Energy"}),
    );
    let mut ledger = ledger_after(&write(map("company_account", &synced, None)), T0);
    // Industry set to Retail at T0 + 100: queued, noted, not landed.
    let mut retail = company(
        Operation::Updated,
        json!({"Name": "Acme", "Industry": "Retail"}),
    );
    retail.occurred_at_ms = T0 + 100;
    let first = write(map("company_account", &retail, Some(&ledger)));
    assert_eq!(first[0].fields["Industry"], json!("Retail"));
    let mut set_back = synced.clone();
    set_back.occurred_at_ms = T0 + 200;
    // Nothing on its way: an echo or no change, and the record is in sync as of T0 + 200 as
    // long as nothing was queued since the ledger was read.
    let MapOutcome::InSync { reason, seen, .. } = map("company_account", &set_back, Some(&ledger))
    else {
        panic!("in sync expected")
    };
    assert!(reason.starts_with("no mapped field changed"), "{reason}");
    let expected = InSync {
        source: System::Gainsight,
        changed_at_ms: T0 + 200,
        mapped_at: None,
    };
    assert_eq!(seen, expected);
    ledger.mapped(System::Gainsight, T0 + 100);
    let cmds = write(map("company_account", &set_back, Some(&ledger)));
    assert_eq!(cmds.len(), 1);
    assert!(cmds[0].fields.is_empty(), "{:?}", cmds[0].fields);
    assert!(cmds[0].field_states.is_empty());
    assert_eq!(cmds[0].unchanged["Industry"].value, json!("Energy"));
    assert_eq!(cmds[0].unchanged["Name"].value, json!("Acme"));
    assert_eq!(cmds[0].source_changed_at_ms, T0 + 200);
    // Once that write has landed, the same change is an echo again...
    ledger.gainsight_changed_at_ms = Some(T0 + 100);
    assert!(matches!(
        map("company_account", &set_back, Some(&ledger)),
        MapOutcome::InSync { .. }
    ));
    // ...and a change older than the one on its way is superseded by it: in sync as of its own
    // time, which leaves the newer write on its way fresh.
    ledger.gainsight_changed_at_ms = Some(T0);
    let mut older = synced.clone();
    older.occurred_at_ms = T0 + 50;
    let MapOutcome::InSync { seen, .. } = map("company_account", &older, Some(&ledger)) else {
        panic!("in sync expected")
    };
    assert_eq!(
        (seen.changed_at_ms, seen.mapped_at),
        (T0 + 50, Some(T0 + 100))
    );
}

#[test]
fn resync_rewrites_even_unchanged_values() {
    let c = company(Operation::Updated, json!({"Name": "Acme"}));
    let ledger = ledger_after(&write(map("company_account", &c, None)), T0);
    assert!(matches!(
        map("company_account", &c, Some(&ledger)),
        MapOutcome::InSync { .. }
    ));
    let mut forced = c.clone();
    forced.origin = ChangeOrigin::Resync;
    assert!(matches!(
        map("company_account", &forced, Some(&ledger)),
        MapOutcome::Write(_)
    ));
}

#[test]
fn stale_changes_are_ignored_per_source_clock() {
    let c = company(Operation::Updated, json!({"Name": "Acme"}));
    let newer = LedgerRecord {
        gainsight_changed_at_ms: Some(T0 + 1),
        ..LedgerRecord::new("company_account", LedgerKey::Gainsight("1P02GS".into()))
    };
    assert!(reason(&map("company_account", &c, Some(&newer))).starts_with("ignored: stale"));
    // A newer Salesforce timestamp says nothing about Gainsight's clock.
    let other = LedgerRecord {
        salesforce_changed_at_ms: Some(T0 + 1),
        ..LedgerRecord::new("company_account", LedgerKey::Gainsight("1P02GS".into()))
    };
    assert!(matches!(
        map("company_account", &c, Some(&other)),
        MapOutcome::Write(_)
    ));
}

/// Both sides changed a bi-directional field since the last sync: the Gainsight value was synced
/// to Salesforce at T0+100, after Salesforce's own edit at `sf_edit_at`.
fn conflict_case(field: &str, gs_value: &str, sf_value: &str, sf_edit_at: i64) -> MapOutcome {
    let (gs_field, sf_field) = match field {
        "Name" => ("Name", "Name"),
        _ => ("Industry", "Industry"),
    };
    let mut gs = company(Operation::Updated, json!({ gs_field: gs_value }));
    gs.occurred_at_ms = T0 + 50;
    let ledger = ledger_after(&write(map("company_account", &gs, None)), T0 + 100);
    let mut sf = account(
        Operation::Updated,
        json!({ sf_field: sf_value, "Gainsight_Company_Id__c": "1P02GS" }),
    );
    sf.occurred_at_ms = sf_edit_at;
    map("company_account", &sf, Some(&ledger))
}

#[test]
fn conflict_rules_table() {
    // Name: newest. Industry: salesforce_wins. (field, Salesforce edit time, Salesforce wins?)
    let cases = [
        ("Name", T0 + 80, true), // Salesforce edited after Gainsight's edit (T0+50): newest
        ("Name", T0 + 20, false), // Salesforce's edit is older than Gainsight's: Gainsight keeps
        ("Industry", T0 + 20, true), // salesforce_wins regardless of time
        ("Name", T0 + 300, true), // after the sync: not a conflict, a plain later change
    ];
    for (i, (field, at, sf_wins)) in cases.into_iter().enumerate() {
        let value = if field == "Name" { "SF name" } else { "Retail" };
        let gs_value = if field == "Name" { "GS name" } else { "Energy" };
        let outcome = conflict_case(field, gs_value, value, at);
        if sf_wins {
            let cmds = write(outcome);
            assert_eq!(cmds[0].target, System::Gainsight, "case {i}");
            assert_eq!(cmds[0].fields.get(field), Some(&json!(value)), "case {i}");
            if at <= T0 + 100 {
                // Our sync overwrote Salesforce's value after its edit: it is written back there.
                assert_eq!(cmds.len(), 2, "case {i}");
                assert_eq!(
                    (cmds[1].target, cmds[1].mode),
                    (System::Salesforce, WriteMode::Update)
                );
                assert_eq!(cmds[1].fields.get(field), Some(&json!(value)), "case {i}");
            } else {
                assert_eq!(cmds.len(), 1, "case {i}");
            }
        } else {
            let r = reason(&outcome);
            assert!(
                r.contains("conflict on Name") && r.contains("keeps the gainsight value"),
                "case {i}: {r}"
            );
        }
    }

    // gainsight_wins (Person.Title): Salesforce's concurrent edit loses even when newer.
    let mut gs = person(json!({"LastName": "L", "Email": "l@x.io", "Title": "CTO"}));
    gs.occurred_at_ms = T0 + 50;
    let ledger = ledger_after(&write(map("person_contact", &gs, None)), T0 + 100);
    let mut sf = change(
        System::Salesforce,
        "Contact",
        "003000000000001AAA",
        Operation::Updated,
        json!({"Title": "VP", "Gainsight_Person_Id__c": "1P03P1"}),
    );
    sf.occurred_at_ms = T0 + 90;
    let r = reason(&map("person_contact", &sf, Some(&ledger)));
    assert!(
        r.contains("gainsight_wins keeps the gainsight value"),
        "{r}"
    );
}
