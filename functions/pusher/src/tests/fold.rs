//! Writes of one record in one batch, folded into one.

use super::*;
use shared::fakes::failed_ids;

/// The same Company's creation (upsert) and a later update (update only).
fn created_then_updated() -> Vec<(&'static str, String)> {
    let mut update: WriteCommand = serde_json::from_str(&command("G1", "New", 2)).unwrap();
    update.mode = WriteMode::Update;
    vec![
        ("create", command("G1", "Old", 1)),
        ("update", serde_json::to_string(&update).unwrap()),
    ]
}

/// Two changes of one record in one batch are written once, with the update's values, yet
/// each has its entry in the record's history and its line in the run: an echo queued behind an
/// update (nothing of its own to write) was otherwise never accounted for, one outcome short.
#[tokio::test]
async fn a_record_created_and_updated_in_one_batch_is_created_with_the_update_and_both_recorded() {
    let rig = rig();
    let (response, summary) = rig
        .pusher
        .handle_at(event(created_then_updated()), 1_000)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.synced, summary.superseded), (1, 1));
    let records = rig.sf.records.lock().unwrap().clone();
    let (_, fields) = records
        .get(&("Account".to_string(), "G1".to_string()))
        .expect("created, not ignored for want of a match");
    assert_eq!(fields["Name"], "New");
    let ledger = rig.store.ledger_of("company_account", "G1").unwrap();
    let outcomes: Vec<_> = ledger.history.iter().map(|h| h.outcome).collect();
    use shared::domain::Outcome;
    assert_eq!(outcomes, [Outcome::Synced, Outcome::Ignored]);
    assert!(ledger.synced && !ledger.error, "{ledger:?}");
    let folded = ledger.history[1].message.clone().unwrap_or_default();
    assert!(folded.contains("folded into a newer change"), "{folded}");
    let run = rig.store.runs.lock().unwrap()[0].clone();
    let lines: Vec<_> = run.log.iter().filter(|l| l.record == "G1").collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[tokio::test]
async fn a_folded_write_that_goes_back_takes_the_folded_messages_along() {
    let rig = rig();
    *rig.sf.unavailable.lock().unwrap() = true;
    let (response, _) = rig
        .pusher
        .handle_at(event(created_then_updated()), 1_000)
        .await;
    let mut failed = failed_ids(&response);
    failed.sort();
    assert_eq!(failed, vec!["create", "update"], "the creation is not lost");
}
