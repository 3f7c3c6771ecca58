//! Changes as sources deliver them beyond a record's values: change events relayed again, and
//! Salesforce merges (a losing record's delete, the master taking over its pair).

use super::*;
use crate::domain::merge::Merge;

/// A change event relayed again (EventBridge delivers at least once; a relay resumed from the
/// earliest event re-sends three days) finds every value as last synced: nothing is written.
#[test]
fn a_change_event_relayed_again_writes_nothing() {
    let raw = json!({
        "id": "e1", "detail-type": "AccountChangeEvent", "source": "aws.partner/salesforce.com/x/y",
        "detail": {"id": "u1", "payload": {
            "ChangeEventHeader": {"entityName": "Account", "recordIds": ["001000000000001AAA"],
                "changeType": "UPDATE", "commitTimestamp": T0 + 50, "commitUser": "005P",
                "changedFields": ["Name", "LastModifiedDate"]},
            "Name": "Relayed", "LastModifiedDate": "2023-11-14T22:13:20.050Z"}}
    });
    let read = |raw: &Value| match crate::domain::cdc::changes_of(
        serde_json::from_value(raw.clone()).unwrap(),
        None,
        T0 + 60,
    ) {
        Ok(crate::domain::cdc::Relayed::Changes(mut c)) => c.remove(0),
        other => panic!("{other:?}"),
    };
    let first = read(&raw);
    let cmds = write(map("company_account", &first, None));
    assert_eq!(cmds[0].fields["Name"], json!("Relayed"));
    let ledger = ledger_after(&cmds, T0 + 100);
    let again = map("company_account", &read(&raw), Some(&ledger));
    assert!(
        matches!(again, MapOutcome::InSync { .. }),
        "{}",
        reason(&again)
    );
}

/// The delete of an Account merged into `001M`, whose pair (if any) is `master_pair`; the
/// Account's own pair is G1 (its GSID found through the ledger).
fn merged_away(master_pair: Option<&str>) -> ChangeEvent {
    let mut c = account(Operation::Deleted, json!({"Gainsight_Company_Id__c": "G1"}));
    c.merge = Some(Merge::Lost {
        into: "001M".into(),
        into_pair: master_pair.map(str::to_string),
    });
    c
}

#[test]
fn a_merged_record_is_recorded_as_merged_and_both_pairs_go_to_an_operator() {
    let alone = map("company_account", &merged_away(None), None);
    assert!(
        matches!(&alone, MapOutcome::Ignored { key: Some(LedgerKey::Gainsight(g)), reason }
            if g == "G1" && reason.contains("was merged into 001M") && reason.contains("now pairs with 001M")),
        "{}",
        reason(&alone)
    );
    let both = map("company_account", &merged_away(Some("G2")), None);
    assert!(
        matches!(&both, MapOutcome::Rejected { key: Some(LedgerKey::Gainsight(g)), reason }
            if g == "G1" && reason.contains("G1 paired with 001000000000001AAA, G2 with 001M")),
        "{}",
        reason(&both)
    );
}

/// The master of a merge, read back, takes over the losing Account's pair G1: the Company gets
/// the master's Id even when every mapped value is as synced, and the master learns the GSID.
#[test]
fn the_master_of_a_merge_takes_over_the_pair_and_learns_its_gsid() {
    let snapshot = json!({"Name": "Acme", "Phone": "555", "Gainsight_Company_Id__c": "G1"});
    let mut master = change(
        System::Salesforce,
        "Account",
        "001M",
        Operation::Updated,
        snapshot,
    );
    master.read = crate::domain::change::Reading::Done;
    let mut loser = master.clone();
    loser.record_id = "001L".into();
    let ledger = ledger_after(&write(map("company_account", &loser, None)), T0 + 10);
    master.occurred_at_ms = T0 + 20;
    let unchanged = map("company_account", &master, Some(&ledger));
    assert!(
        matches!(unchanged, MapOutcome::InSync { .. }),
        "{}",
        reason(&unchanged)
    );
    master.merge = Some(Merge::TakesOver {
        loser: "001L".into(),
    });
    let cmd = &write(map("company_account", &master, Some(&ledger)))[0];
    assert_eq!(cmd.key, RecordKey::Id { value: "G1".into() });
    assert_eq!(cmd.fields.get("SfdcAccountId"), Some(&json!("001M")));
    assert_eq!(cmd.salesforce_id.as_deref(), Some("001M"));
    assert_eq!(
        cmd.writeback.as_ref().map(|w| w.field.as_str()),
        Some("Gainsight_Company_Id__c"),
        "the master Account is given the GSID of the pair it took over"
    );
}

/// The presence a delete or restore records on pair G1's Salesforce side, applied to `ledger`.
fn recorded(op: Operation, at_ms: i64, ledger: &mut LedgerRecord) -> MapOutcome {
    let mut c = account(op, json!({"Gainsight_Company_Id__c": "G1"}));
    (c.occurred_at_ms, c.changed_by) = (at_ms, Some("005U".into()));
    let outcome = map("company_account", &c, Some(ledger));
    if let MapOutcome::Presence {
        reason,
        side,
        presence,
        ..
    } = &outcome
    {
        let update = crate::domain::LedgerUpdate::Presence {
            reason: reason.clone(),
            side: *side,
            presence: presence.clone(),
        };
        ledger.apply(&update, at_ms, "run");
    }
    outcome
}

/// A delete and a restore are kept as the Salesforce side's presence, with who and when; one
/// older than what the pair records (events out of order) changes nothing.
#[test]
fn deletes_and_restores_are_kept_in_order_as_the_sides_presence() {
    let mut ledger = LedgerRecord::new("company_account", LedgerKey::Gainsight("G1".into()));
    let deleted = recorded(Operation::Deleted, T0 + 10, &mut ledger);
    assert!(
        matches!(&deleted, MapOutcome::Presence { key: Some(LedgerKey::Gainsight(g)), side: System::Salesforce, reason, .. }
            if g == "G1" && reason.contains("was deleted in Salesforce by user 005U")),
        "{}",
        reason(&deleted)
    );
    let said = |l: &LedgerRecord| l.presence[&System::Salesforce].describe();
    assert!(
        said(&ledger).starts_with("deleted at "),
        "{}",
        said(&ledger)
    );
    assert!(
        said(&ledger).ends_with(" by user 005U"),
        "{}",
        said(&ledger)
    );

    let restored = recorded(Operation::Restored, T0 + 30, &mut ledger);
    assert!(
        reason(&restored).contains("was restored in Salesforce by user 005U"),
        "{}",
        reason(&restored)
    );
    assert_eq!(
        ledger.presence[&System::Salesforce].state,
        crate::domain::PresenceState::Restored
    );

    let late = recorded(Operation::Deleted, T0 + 20, &mut ledger);
    assert!(
        matches!(&late, MapOutcome::Ignored { reason, .. } if reason.contains("stale: the record was restored at")),
        "{}",
        reason(&late)
    );
    assert_eq!(
        ledger.presence[&System::Salesforce].state,
        crate::domain::PresenceState::Restored,
        "an older delete after the restore leaves it restored"
    );
}

/// A merged-away record whose pair moves to the master leaves no presence (the pair's record
/// is the master, which is there); one whose master had no other pair is recorded as merged.
#[test]
fn a_merge_is_kept_as_merged_unless_the_pair_moved_to_the_master() {
    let moved = map("company_account", &merged_away(None), None);
    assert!(
        matches!(moved, MapOutcome::Ignored { .. }),
        "{}",
        reason(&moved)
    );
    let mut c = merged_away(None);
    c.fields.remove("Gainsight_Company_Id__c");
    let unpaired = map("company_account", &c, None);
    assert!(
        matches!(&unpaired, MapOutcome::Presence { presence, .. }
            if presence.state == crate::domain::PresenceState::Merged { into: "001M".into() }),
        "{}",
        reason(&unpaired)
    );
}
