//! Unit tests of the pusher's rules, each with the case that must not pass.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::domain::RecordKey;
use crate::domain::{
    ConflictRule, FieldConflict, FieldState, Jobs, LedgerRecord, WriteMode, Writeback,
};

fn command(key: LedgerKey, target: System, at: i64) -> WriteCommand {
    let (object, record_key) = match target {
        System::Salesforce => (
            "Account",
            RecordKey::ExternalId {
                field: "Gainsight_Company_Id__c".into(),
                value: key.to_string(),
            },
        ),
        System::Gainsight => (
            "Company",
            RecordKey::Id {
                value: key.to_string(),
            },
        ),
    };
    WriteCommand {
        job: "company_account".into(),
        target,
        object: object.into(),
        key: record_key,
        mode: WriteMode::Upsert,
        fields: Fields::new(),
        ledger_key: key,
        salesforce_id: None,
        field_states: BTreeMap::new(),
        writeback: None,
        source: target.other(),
        conflicts: BTreeMap::new(),
        event_id: format!("ev-{at}"),
        source_changed_at_ms: at,
        received_at_ms: at,
        attachments: Vec::new(),
        skipped: Vec::new(),
        unchanged: Default::default(),
        load: None,
    }
}

fn pending(id: &str, command: WriteCommand) -> Pending {
    Pending {
        message_id: id.into(),
        command,
    }
}

fn gsid(id: &str) -> LedgerKey {
    LedgerKey::Gainsight(id.into())
}

#[test]
fn only_the_newest_command_per_record_is_kept() {
    let batch = vec![
        pending("m1", command(gsid("G1"), System::Salesforce, 10)),
        pending("m2", command(gsid("G1"), System::Salesforce, 30)),
        pending("m3", command(gsid("G1"), System::Salesforce, 20)),
        pending("m4", command(gsid("G2"), System::Salesforce, 5)),
    ];
    let out = newest_per_record(batch);
    let ids: Vec<&str> = out.kept.iter().map(|p| p.message_id.as_str()).collect();
    assert_eq!((ids, out.superseded), (vec!["m2", "m4"], 2));
    let folded: Vec<&str> = out.folded["m2"]
        .iter()
        .map(|p| p.message_id.as_str())
        .collect();
    assert_eq!(folded, ["m1", "m3"], "in change order");
    // Each folded change is recorded, unless the write carrying it went back to the queue.
    let outcomes = folded_outcomes(&out.folded, &[]);
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes
        .iter()
        .all(|(_, u)| matches!(u, LedgerUpdate::Ignored { reason } if reason == FOLDED)));
    assert!(folded_outcomes(&out.folded, &["m2".to_string()]).is_empty());
}

#[test]
fn a_record_created_then_updated_in_one_batch_is_created_with_the_update() {
    let mut created = command(gsid("G1"), System::Salesforce, 10);
    created.mode = WriteMode::Upsert;
    created.fields.insert("Name".into(), "Old".into());
    created.fields.insert("Industry".into(), "Energy".into());
    let mut updated = command(gsid("G1"), System::Salesforce, 20);
    updated.mode = WriteMode::Update;
    updated.fields.insert("Name".into(), "New".into());
    let out = newest_per_record(vec![pending("create", created), pending("update", updated)]);
    let kept = &out.kept[0];
    assert_eq!(kept.message_id, "update");
    assert_eq!(kept.command.mode, WriteMode::Upsert, "still creates");
    assert_eq!(kept.command.fields["Name"], "New");
    assert_eq!(
        kept.command.fields["Industry"], "Energy",
        "the older values stay"
    );
    assert_eq!(kept.command.source_changed_at_ms, 20);
    assert_eq!(out.folded["update"][0].message_id, "create");
}

#[test]
fn writes_of_one_record_by_its_external_id_and_by_its_id_are_folded() {
    let by_ext = command(gsid("G1"), System::Salesforce, 10);
    let mut by_id = command(gsid("G1"), System::Salesforce, 20);
    by_id.key = RecordKey::Id {
        value: "001000000000001AAA".into(),
    };
    let out = newest_per_record(vec![pending("ext", by_ext), pending("id", by_id)]);
    assert_eq!(
        out.kept.len(),
        1,
        "one write, not two in an order nobody chose"
    );
    assert_eq!(out.kept[0].message_id, "id");
}

#[test]
fn commands_older_than_what_was_written_are_stale() {
    let mut ledgers = LedgerBatch::default();
    let mut written = LedgerRecord::new("company_account", gsid("G1"));
    written.gainsight_changed_at_ms = Some(20);
    ledgers.extend([written]);
    let batch = vec![
        pending("old", command(gsid("G1"), System::Salesforce, 10)),
        pending("new", command(gsid("G1"), System::Salesforce, 30)),
        pending("unknown", command(gsid("G2"), System::Salesforce, 1)),
    ];
    let out = drop_stale(batch, &ledgers);
    let ids = |v: &[Pending]| v.iter().map(|p| p.message_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&out.fresh), ["new", "unknown"]);
    assert_eq!(ids(&out.stale), ["old"]);
    // Salesforce's clock is not compared with Gainsight's.
    let from_sf = vec![pending("sf", command(gsid("G1"), System::Gainsight, 10))];
    assert_eq!(drop_stale(from_sf, &ledgers).fresh.len(), 1);
    ledgers.mark_unreadable("company_account");
    let retry = drop_stale(
        vec![pending("x", command(gsid("G3"), System::Salesforce, 1))],
        &ledgers,
    );
    assert_eq!(ids(&retry.unreadable), ["x"]);
}

/// The same change delivered twice, the second mapped before the first write was recorded: the
/// second finds its values already written at its source time and is dropped; a different
/// change made in the same millisecond is not.
#[test]
fn a_change_already_written_at_its_own_time_is_not_written_again() {
    let first = name_write(System::Salesforce, 20, "Acme");
    let mut written = LedgerRecord::new("company_account", gsid("G1"));
    written.gainsight_changed_at_ms = Some(20);
    written.fields = first.field_states.clone();
    let mut ledgers = LedgerBatch::default();
    ledgers.extend([written]);
    let again = drop_stale(vec![pending("again", first)], &ledgers);
    assert_eq!(again.stale.len(), 1);
    let other = name_write(System::Salesforce, 20, "Acme Two");
    let out = drop_stale(vec![pending("other", other)], &ledgers);
    assert_eq!(out.fresh.len(), 1);
}

/// A command writing bi-directional `Name` = `value` from the other side of `target`.
fn name_write(target: System, at: i64, value: &str) -> WriteCommand {
    let mut cmd = command(gsid("G1"), target, at);
    let source = target.other();
    let target_field = "Name";
    cmd.fields.insert(target_field.into(), json!(value));
    cmd.salesforce_id = Some("001A".into());
    let hash = crate::domain::mapping::hash(&json!(value));
    let state = FieldState {
        gainsight: hash,
        salesforce: hash,
        from: source,
        changed_at_ms: at,
        synced_at_ms: 0,
    };
    cmd.field_states.insert("Name".into(), state);
    cmd.conflicts.insert(
        "Name".into(),
        FieldConflict {
            rule: ConflictRule::Newest,
            target_field: target_field.into(),
            source_object: if source == System::Gainsight {
                "Company"
            } else {
                "Account"
            }
            .into(),
            source_field: "Name".into(),
            source_value: json!(value),
        },
    );
    cmd
}

#[test]
fn opposite_changes_in_one_batch_keep_the_newest() {
    let batch = vec![
        pending("to-sf", name_write(System::Salesforce, 100, "GS name")),
        pending("to-gs", name_write(System::Gainsight, 200, "SF name")),
    ];
    let out = settle_conflicts(batch, &LedgerBatch::default(), &Jobs::builtin());
    assert_eq!(out.kept.len(), 1);
    assert_eq!(
        out.kept[0].message_id, "to-gs",
        "Salesforce's later edit wins"
    );
    let (loser, outcome) = &out.settled[0];
    assert_eq!(loser.message_id, "to-sf");
    assert!(
        matches!(outcome, WriteOutcome::Ignored { reason } if reason.contains("newest keeps the salesforce value")),
        "{outcome:?}"
    );
    assert!(out.restores.is_empty());
}

#[test]
fn a_winner_against_a_write_that_landed_is_restored_on_its_own_side() {
    // Salesforce's value was synced onto Gainsight at 150; Gainsight's own edit (at 120) is
    // older than the landing, so both changed; with newest, Salesforce's edit at 100 loses.
    let mut record = LedgerRecord::new("company_account", gsid("G1"));
    record.fields.insert(
        "Name".into(),
        FieldState {
            gainsight: 1,
            salesforce: 1,
            from: System::Salesforce,
            changed_at_ms: 100,
            synced_at_ms: 150,
        },
    );
    let mut ledgers = LedgerBatch::default();
    ledgers.extend([record]);
    let batch = vec![pending(
        "gs",
        name_write(System::Salesforce, 120, "GS name"),
    )];
    let out = settle_conflicts(batch, &ledgers, &Jobs::builtin());
    assert_eq!(out.kept.len(), 1, "Gainsight's newer value is written");
    let restore = &out.restores[0];
    assert_eq!(
        (restore.system, restore.object.as_str()),
        (System::Gainsight, "Company")
    );
    assert_eq!(restore.fields["Gsid"], json!("G1"));
    assert_eq!(restore.fields["Name"], json!("GS name"));
    // Made before the other side's value was written, and older: it loses instead.
    let batch = vec![pending("gs", name_write(System::Salesforce, 90, "GS name"))];
    let out = settle_conflicts(batch, &ledgers, &Jobs::builtin());
    assert!(out.kept.is_empty() && out.restores.is_empty());
}

#[test]
fn a_salesforce_only_pair_moves_to_its_new_gsid_and_the_account_learns_it() {
    let jobs = Jobs::builtin();
    let job = jobs.get("company_account").unwrap();
    let mut cmd = command(
        LedgerKey::SalesforceOnly("001A".into()),
        System::Gainsight,
        7,
    );
    cmd.salesforce_id = Some("001A".into());
    cmd.writeback = Some(Writeback {
        system: System::Salesforce,
        object: "Account".into(),
        field: "Gainsight_Company_Id__c".into(),
    });
    let created = WriteOutcome::Synced {
        target_id: Some("1PNEW".into()),
    };
    // The placeholder was stored (an earlier attempt failed): it moves with the record.
    let mut ledgers = LedgerBatch::default();
    let placeholder = LedgerKey::SalesforceOnly("001A".into());
    ledgers.extend([LedgerRecord::new("company_account", placeholder.clone())]);
    let effect = ledger_effect(job, &cmd, created.clone(), &ledgers, 99);
    assert_eq!(effect.key, gsid("1PNEW"));
    assert_eq!(effect.moved_from, Some(placeholder.clone()));
    assert_eq!(
        effect.prior,
        Prior::Absent,
        "nothing was stored under the new GSID"
    );
    // Never stored: the move is still noted, for writes mapped before it.
    let unstored = ledger_effect(job, &cmd, created, &LedgerBatch::default(), 99);
    assert_eq!(unstored.moved_from, Some(placeholder));
    let wb = effect.writeback.expect("the Account learns its GSID");
    assert_eq!(wb.id_field, "Id");
    assert_eq!(wb.fields["Id"], json!("001A"));
    assert_eq!(wb.fields["Gainsight_Company_Id__c"], json!("1PNEW"));
    assert!(matches!(
        effect.update,
        LedgerUpdate::Synced {
            source_changed_at_ms: 7,
            ..
        }
    ));
    // A linked pair stays where it is.
    let linked = command(gsid("G1"), System::Gainsight, 7);
    let mut ledgers = LedgerBatch::default();
    ledgers.extend([LedgerRecord::new("company_account", gsid("G1"))]);
    let synced = WriteOutcome::Synced { target_id: None };
    let effect = ledger_effect(job, &linked, synced, &ledgers, 99);
    assert_eq!(
        (effect.key, effect.moved_from, effect.prior),
        (gsid("G1"), None, Prior::Version(0))
    );
}

/// A Company's new Account: its Id forwards to the pair from now on, so that a change event of
/// the Account (which names only its Id) finds the pair; an update of a known twin notes nothing.
#[test]
fn a_gainsight_records_new_salesforce_twin_forwards_to_the_pair() {
    let jobs = Jobs::builtin();
    let job = jobs.get("company_account").unwrap();
    let create = command(gsid("G1"), System::Salesforce, 7);
    let created = WriteOutcome::Synced {
        target_id: Some("001NEW".into()),
    };
    let effect = ledger_effect(job, &create, created.clone(), &LedgerBatch::default(), 99);
    assert_eq!(effect.key, gsid("G1"));
    assert_eq!(
        effect.moved_from,
        Some(LedgerKey::SalesforceOnly("001NEW".into()))
    );
    let mut update = command(gsid("G1"), System::Salesforce, 8);
    update.salesforce_id = Some("001NEW".into());
    let effect = ledger_effect(job, &update, created, &LedgerBatch::default(), 99);
    assert_eq!(effect.moved_from, None);
}

#[test]
fn a_transient_failure_is_recorded_and_retried_a_final_one_only_recorded() {
    let jobs = Jobs::builtin();
    let job = jobs.get("company_account").unwrap();
    let cmd = command(gsid("G1"), System::Salesforce, 1);
    let locked = WriteOutcome::Failed {
        message: "UNABLE_TO_LOCK_ROW".into(),
        retryable: true,
    };
    let effect = ledger_effect(job, &cmd, locked, &LedgerBatch::default(), 2);
    assert!(effect.retry);
    assert_eq!(
        effect.update,
        LedgerUpdate::Failed {
            message: "UNABLE_TO_LOCK_ROW".into()
        }
    );
    let refused = ledger_effect(
        job,
        &cmd,
        WriteOutcome::failed("INVALID"),
        &LedgerBatch::default(),
        2,
    );
    assert!(!refused.retry);
}

#[test]
fn a_write_whose_attachment_did_not_go_up_is_recorded_then_marked_error() {
    let jobs = Jobs::builtin();
    let job = jobs.get("company_account").unwrap();
    let cmd = command(gsid("G1"), System::Salesforce, 1);
    let written = WriteOutcome::Synced {
        target_id: Some("00T1".into()),
    };
    let effect = ledger_effect(job, &cmd, written, &LedgerBatch::default(), 2);
    let marked = unfinished(&effect, "file missing".into()).expect("a synced write");
    assert_eq!(marked.key, effect.key);
    assert_eq!(
        marked.update,
        LedgerUpdate::Failed {
            message: "file missing".into()
        }
    );
    assert_eq!((marked.prior, marked.retry), (Prior::Unread, false));
    // Applied in that order, the pair stays linked and shows as error.
    let mut record = LedgerRecord::new("company_account", gsid("G1"));
    record.apply(&effect.update, 2, "run");
    record.apply(&marked.update, 2, "run");
    assert!(record.synced && record.error && record.salesforce_id.is_some());
    let refused = ledger_effect(
        job,
        &cmd,
        WriteOutcome::failed("NO"),
        &LedgerBatch::default(),
        2,
    );
    assert_eq!(unfinished(&refused, "file missing".into()), None);
}

fn keyed(value: &str) -> Pending {
    let mut cmd = command(gsid("G1"), System::Gainsight, 1);
    cmd.key = RecordKey::ExternalId {
        field: "Email".into(),
        value: value.into(),
    };
    cmd.fields.insert("Email".into(), json!(value));
    pending(value, cmd)
}

#[test]
fn a_gainsight_group_updates_one_match_inserts_the_rest_and_settles_the_others() {
    let batch = vec![keyed("one@x"), keyed("two@x"), keyed("none@x")];
    let mut found = plan::Found::new();
    found.insert(vec!["one@x".into()], vec!["1P1".into()]);
    found.insert(vec!["two@x".into()], vec!["1P2".into(), "1P3".into()]);
    let ids = ("Person", "Email", "Gsid");
    let plans = plan_gainsight(ids, WriteMode::Upsert, &batch, &found);
    assert!(matches!(&plans[0], GainsightPlan::Update(f) if f["Gsid"] == json!("1P1")));
    assert!(
        matches!(&plans[1], GainsightPlan::Done(WriteOutcome::Failed { message, .. }) if message.starts_with("2 Person records"))
    );
    assert!(matches!(&plans[2], GainsightPlan::Insert(_)));
    let update_only = plan_gainsight(ids, WriteMode::Update, &batch, &found);
    assert!(matches!(
        &update_only[2],
        GainsightPlan::Done(WriteOutcome::Unmatched { .. })
    ));
    let create_only = plan_gainsight(ids, WriteMode::Create, &batch, &found);
    assert!(
        matches!(&create_only[0], GainsightPlan::Done(WriteOutcome::Failed { message, .. }) if message.contains("exists already"))
    );
}

#[test]
fn a_salesforce_update_needs_exactly_one_match() {
    let batch = vec![keyed("a"), keyed("b"), keyed("c")];
    let mut found = plan::Found::new();
    found.insert(vec!["a".into()], vec!["001A".into()]);
    found.insert(vec!["b".into()], vec!["001B".into(), "001C".into()]);
    let plans = plan_salesforce_update(("Account", "Ext__c", "Id"), &batch, &found);
    assert!(matches!(&plans[0], Ok(f) if f["Id"] == json!("001A")));
    assert!(matches!(&plans[1], Err(WriteOutcome::Failed { .. })));
    assert!(matches!(&plans[2], Err(WriteOutcome::Unmatched { .. })));
}

#[test]
fn a_parked_update_goes_along_with_the_next_write_to_its_system() {
    let key = gsid("G1");
    let mut create = command(key.clone(), System::Salesforce, 10);
    create.fields = json!({"Name": "Made", "Phone": "1"})
        .as_object()
        .cloned()
        .unwrap();
    let mut rename = command(key.clone(), System::Salesforce, 20);
    rename.mode = WriteMode::Update;
    rename.fields = json!({"Name": "Renamed"}).as_object().cloned().unwrap();
    // The rename found no Account: parked in the ledger.
    let mut record = LedgerRecord::new("company_account", key.clone());
    let parked = LedgerUpdate::Parked {
        reason: "no Account".into(),
        write: Box::new(rename.clone()),
    };
    record.apply(&parked, 30, "run-1");
    assert_eq!(record.ignored_count, 1);
    let mut ledgers = LedgerBatch::default();
    ledgers.extend([record.clone()]);

    // The creation, landing later, carries the rename: created with the newest name.
    let batch = vec![Pending {
        message_id: "m1".into(),
        command: create.clone(),
    }];
    let out = unpark(batch, &ledgers);
    let cmd = &out[0].command;
    assert_eq!(cmd.mode, WriteMode::Upsert, "still a creation");
    assert_eq!(cmd.fields["Name"], json!("Renamed"));
    assert_eq!(cmd.fields["Phone"], json!("1"));
    assert_eq!(cmd.source_changed_at_ms, 20);

    // A newer write keeps its own values over the parked ones.
    let mut newer = command(key.clone(), System::Salesforce, 40);
    newer.fields = json!({"Name": "Newest"}).as_object().cloned().unwrap();
    let batch = vec![Pending {
        message_id: "m2".into(),
        command: newer,
    }];
    assert_eq!(
        unpark(batch, &ledgers)[0].command.fields["Name"],
        json!("Newest")
    );

    // A write to the other system takes nothing parked for Salesforce.
    let other = Pending {
        message_id: "m3".into(),
        command: command(key.clone(), System::Gainsight, 5),
    };
    assert!(!unpark(vec![other], &ledgers)[0]
        .command
        .fields
        .contains_key("Name"));

    // Once a write to Salesforce lands, nothing is parked for it any more.
    let synced = LedgerUpdate::Synced {
        salesforce_id: None,
        source: System::Gainsight,
        source_changed_at_ms: 20,
        fields: Default::default(),
    };
    record.apply(&synced, 50, "run-2");
    assert!(record.parked.is_empty());
}

#[test]
fn an_update_without_a_twin_is_parked_in_the_ledger() {
    let jobs = Jobs::builtin();
    let job = jobs.get("company_account").unwrap();
    let mut cmd = command(gsid("G1"), System::Salesforce, 7);
    cmd.mode = WriteMode::Update;
    let unmatched = WriteOutcome::Unmatched {
        reason: "no Account has it".into(),
    };
    let effect = ledger_effect(job, &cmd, unmatched, &LedgerBatch::default(), 9);
    assert_eq!(
        effect.update,
        LedgerUpdate::Parked {
            reason: "no Account has it".into(),
            write: Box::new(cmd),
        }
    );
    assert!(!effect.retry);
}

/// A Case change from Salesforce at `at`: `written` fields, and Priority as found unchanged
/// (`kept`: its value then) when `kept` is given.
fn case_change(at: i64, written: serde_json::Value, kept: Option<&str>) -> WriteCommand {
    let mut cmd = command(gsid("G1"), System::Gainsight, at);
    cmd.fields = written.as_object().cloned().unwrap();
    for (field, value) in &cmd.fields.clone() {
        let state = FieldState {
            gainsight: crate::domain::mapping::hash(value),
            salesforce: crate::domain::mapping::hash(value),
            from: System::Salesforce,
            changed_at_ms: at,
            synced_at_ms: 0,
        };
        cmd.field_states.insert(field.clone(), state);
    }
    if let Some(value) = kept {
        let value = json!(value);
        let state = FieldState {
            gainsight: crate::domain::mapping::hash(&value),
            salesforce: crate::domain::mapping::hash(&value),
            from: System::Salesforce,
            changed_at_ms: at,
            synced_at_ms: 0,
        };
        let kept = crate::domain::Unchanged {
            target_field: "Priority".into(),
            value,
            state,
        };
        cmd.unchanged.insert("Priority".into(), kept);
    }
    cmd
}

#[test]
fn a_field_set_back_to_its_synced_value_supersedes_the_older_change_folded_with_it() {
    // Priority was synced as High; a person set it Low (t=10), then back to High with a new
    // Subject (t=20), mapped before the first change was written.
    let low = case_change(10, json!({"Priority": "Low"}), None);
    let back = case_change(20, json!({"Subject": "S2"}), Some("High"));
    let folded = fold(low, back);
    assert_eq!(
        folded.fields,
        json!({"Subject": "S2"}).as_object().cloned().unwrap()
    );
    assert!(!folded.field_states.contains_key("Priority"));
    assert!(
        folded.unchanged.contains_key("Priority"),
        "still checked at push time"
    );
}

#[test]
fn a_field_found_unchanged_is_written_when_an_older_change_of_it_landed_meanwhile() {
    let back = case_change(20, json!({"Subject": "S2"}), Some("High"));
    let pending = |cmd: &WriteCommand| Pending {
        message_id: "m".into(),
        command: cmd.clone(),
    };
    // The Low change (t=10) landed between the mapping and now.
    let mut record = LedgerRecord::new("company_account", gsid("G1"));
    record.fields = case_change(10, json!({"Priority": "Low"}), None).field_states;
    let mut ledgers = LedgerBatch::default();
    ledgers.extend([record.clone()]);
    let out = recheck_unchanged(vec![pending(&back)], &ledgers);
    assert_eq!(out[0].command.fields["Priority"], json!("High"));
    assert!(out[0].command.field_states.contains_key("Priority"));

    // Nothing landed since (the ledger still says High): nothing more to write.
    let mut same = record.clone();
    same.fields = case_change(5, json!({"Priority": "High"}), None).field_states;
    let mut ledgers = LedgerBatch::default();
    ledgers.extend([same]);
    let out = recheck_unchanged(vec![pending(&back)], &ledgers);
    assert!(!out[0].command.fields.contains_key("Priority"));

    // The other side's value landed since: not this side's to undo.
    let mut theirs = record;
    for state in theirs.fields.values_mut() {
        state.from = System::Gainsight;
    }
    let mut ledgers = LedgerBatch::default();
    ledgers.extend([theirs]);
    let out = recheck_unchanged(vec![pending(&back)], &ledgers);
    assert!(!out[0].command.fields.contains_key("Priority"));
}

/// Priority synced as High, set Low (t=10) and back to High (t=20) while the Low write was on
/// its way: the second change is a snapshot with nothing to write and Priority unchanged.
#[test]
fn a_snapshot_with_nothing_to_write_settles_without_a_call_or_writes_what_landed_before_it() {
    let low = case_change(10, json!({"Priority": "Low"}), None);
    let snapshot = case_change(20, json!({}), Some("High"));
    let pending = |cmd: &WriteCommand| Pending {
        message_id: "m".into(),
        command: cmd.clone(),
    };
    // Both in one batch: folded, the Low change is superseded and nothing is left to write.
    let folded = fold(low.clone(), snapshot.clone());
    let (rest, settled) = nothing_to_write(vec![pending(&folded)]);
    assert!(rest.is_empty());
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].0.command.source_changed_at_ms, 20);
    assert!(matches!(
        settled[0].1,
        WriteOutcome::Synced { target_id: None }
    ));
    // Its ledger update takes t=20 as the last change written from Salesforce, so the Low write
    // arriving after it is stale.
    let jobs = Jobs::builtin();
    let job = jobs.get("company_account").unwrap();
    let (cmd, outcome) = (&settled[0].0.command, settled[0].1.clone());
    let effect = ledger_effect(job, cmd, outcome, &LedgerBatch::default(), 30);
    let mut record = LedgerRecord::new("company_account", gsid("G1"));
    record.fields = case_change(5, json!({"Priority": "High"}), None).field_states;
    record.apply(&effect.update, 30, "run");
    let mut ledgers = LedgerBatch::default();
    ledgers.extend([record]);
    let after = drop_stale(vec![pending(&low)], &ledgers);
    assert_eq!(after.stale.len(), 1);
    // The Low write landed first: the snapshot writes High after all.
    let mut landed = LedgerRecord::new("company_account", gsid("G1"));
    landed.fields = low.field_states.clone();
    landed.salesforce_changed_at_ms = Some(10);
    let mut ledgers = LedgerBatch::default();
    ledgers.extend([landed]);
    let rechecked = recheck_unchanged(vec![pending(&snapshot)], &ledgers);
    let (rest, settled) = nothing_to_write(rechecked);
    assert!(settled.is_empty());
    assert_eq!(rest[0].command.fields["Priority"], json!("High"));
}

#[test]
fn a_write_to_a_twin_that_is_gone_marks_the_pair_error_saying_what_to_do() {
    let jobs = Jobs::builtin();
    let job = jobs.get("company_account").unwrap();
    let mut cmd = command(LedgerKey::Gainsight("G1".into()), System::Salesforce, 1);
    cmd.key = RecordKey::Id {
        value: "001000000000009AAA".into(),
    };
    let outcome = WriteOutcome::Gone {
        message: "ENTITY_IS_DELETED: entity is deleted".into(),
    };
    let effect = ledger_effect(job, &cmd, outcome, &LedgerBatch::default(), 10);
    assert!(!effect.retry, "writing again cannot help");
    let LedgerUpdate::Failed { message } = effect.update else {
        panic!("an error");
    };
    assert!(
        message.starts_with("the Salesforce Account 001000000000009AAA of this pair no longer exists (ENTITY_IS_DELETED: entity is deleted)")
            && message.contains("syncctl import")
            && message.contains("syncctl resync --job company_account"),
        "{message}"
    );
}
