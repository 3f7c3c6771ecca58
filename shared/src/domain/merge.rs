//! Salesforce merges and their pairs: a merge deletes the losing records with `MasterRecordId`
//! naming the record they were merged into (the master), and the pair of a losing record either
//! moves to the master, or, when the master has its own pair, waits for an operator.

use serde::{Deserialize, Serialize};

use super::change::ChangeEvent;
use super::ledger::PresenceState;

/// What a change knows of a merge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Merge {
    /// This deleted record was merged into `into`; `into_pair` is the master's Gainsight pair,
    /// when the ledger links one.
    Lost {
        into: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into_pair: Option<String>,
    },
    /// This record is the master of a merge and takes over the Gainsight pair of `loser`.
    TakesOver { loser: String },
}

/// What becomes of the pairs when a record with pair `loser_pair` was merged into another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeAction {
    /// Nothing moves: the losing record had no pair, or the master already has the same one.
    Record,
    /// The master had no pair: the losing record's pair (`gsid`) moves to it.
    Repoint { gsid: String },
    /// Both had pairs: which Gainsight record stays is an operator's call.
    Attention {
        loser_pair: String,
        master_pair: String,
    },
}

/// The rule for a merged record whose pair is `loser_pair` and whose master's pair is
/// `master_pair`.
pub fn action(loser_pair: Option<&str>, master_pair: Option<&str>) -> MergeAction {
    match (loser_pair, master_pair) {
        (None, _) => MergeAction::Record,
        (Some(loser), None) => MergeAction::Repoint {
            gsid: loser.to_string(),
        },
        (Some(loser), Some(master)) if loser == master => MergeAction::Record,
        (Some(loser), Some(master)) => MergeAction::Attention {
            loser_pair: loser.to_string(),
            master_pair: master.to_string(),
        },
    }
}

/// What a Salesforce delete of `change` (whose pair is `loser_pair`) is recorded as: `Ok` for a
/// delete or a merge the sync settles by itself, `Err` for a merge an operator must settle.
pub fn delete_note(change: &ChangeEvent, loser_pair: Option<&str>) -> Result<String, String> {
    let by = by_user(change);
    let (object, id) = (&change.object, &change.record_id);
    let (system, at) = (
        change.source.label(),
        crate::time::rfc3339(change.occurred_at_ms),
    );
    let Some(Merge::Lost { into, into_pair }) = &change.merge else {
        return Ok(format!(
            "{object} {id} was deleted in {system}{by} at {at}; deletes are recorded, not propagated"
        ));
    };
    let merged = format!("{object} {id} was merged into {into} in {system}{by} at {at}");
    match action(loser_pair, into_pair.as_deref()) {
        MergeAction::Record => Ok(format!("{merged}; deletes are recorded, not propagated")),
        MergeAction::Repoint { gsid } => Ok(format!(
            "{merged}; its Gainsight pair {gsid} now pairs with {into}"
        )),
        MergeAction::Attention {
            loser_pair,
            master_pair,
        } => Err(format!(
            "{merged}, but both had Gainsight pairs ({loser_pair} paired with {id}, {master_pair} \
             with {into}); nothing was changed: merge {loser_pair} into {master_pair} in \
             Gainsight (or unlink one), then resync {into}"
        )),
    }
}

/// What a Salesforce delete of `change` (whose pair is `loser_pair`) leaves the pair's
/// Salesforce side as: deleted, or merged into the master; `None` when the pair moves to the
/// master, whose record is there.
pub fn left_behind(change: &ChangeEvent, loser_pair: Option<&str>) -> Option<PresenceState> {
    let Some(Merge::Lost { into, into_pair }) = &change.merge else {
        return Some(PresenceState::Deleted);
    };
    match action(loser_pair, into_pair.as_deref()) {
        MergeAction::Repoint { .. } => None,
        MergeAction::Record | MergeAction::Attention { .. } => {
            Some(PresenceState::Merged { into: into.clone() })
        }
    }
}

/// " by user U" when the source says who made `change`.
fn by_user(change: &ChangeEvent) -> String {
    (change.changed_by.as_deref()).map_or(String::new(), |u| format!(" by user {u}"))
}

/// What a record taken back out of the recycle bin is recorded as.
pub fn restore_note(change: &ChangeEvent) -> String {
    let by = by_user(change);
    format!(
        "{} {} was restored in {}{by} at {}; restores are recorded, not propagated",
        change.object,
        change.record_id,
        change.source.label(),
        crate::time::rfc3339(change.occurred_at_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::change::{Operation, SourceRecord, System};

    fn deleted(merge: Option<Merge>) -> ChangeEvent {
        let record = SourceRecord {
            source: System::Salesforce,
            object: "Account".into(),
            id: "001L".into(),
            fields: Default::default(),
        };
        let mut change = ChangeEvent::pushed(record, "e".into(), Operation::Deleted, 0, 0);
        change.changed_by = Some("005U".into());
        change.merge = merge;
        change
    }

    fn lost(into_pair: Option<&str>) -> Option<Merge> {
        Some(Merge::Lost {
            into: "001M".into(),
            into_pair: into_pair.map(str::to_string),
        })
    }

    #[test]
    fn a_pair_moves_to_a_master_without_one_and_waits_for_an_operator_otherwise() {
        assert_eq!(action(None, Some("G2")), MergeAction::Record);
        assert_eq!(action(Some("G1"), Some("G1")), MergeAction::Record);
        assert_eq!(
            action(Some("G1"), None),
            MergeAction::Repoint { gsid: "G1".into() }
        );
        assert_eq!(
            action(Some("G1"), Some("G2")),
            MergeAction::Attention {
                loser_pair: "G1".into(),
                master_pair: "G2".into()
            }
        );
    }

    #[test]
    fn a_delete_says_whether_it_was_a_merge_and_what_became_of_the_pair() {
        let plain = delete_note(&deleted(None), Some("G1")).unwrap();
        assert!(plain.starts_with("Account 001L was deleted in Salesforce by user 005U at 1970-"));
        assert!(
            plain.ends_with("deletes are recorded, not propagated"),
            "{plain}"
        );
        let merged = delete_note(&deleted(lost(None)), None).unwrap();
        assert!(merged.contains("was merged into 001M"), "{merged}");
        let moved = delete_note(&deleted(lost(None)), Some("G1")).unwrap();
        assert!(
            moved.ends_with("its Gainsight pair G1 now pairs with 001M"),
            "{moved}"
        );
        let both = delete_note(&deleted(lost(Some("G2"))), Some("G1")).unwrap_err();
        assert!(both.contains("G1 paired with 001L, G2 with 001M"), "{both}");
        assert!(both.contains("then resync 001M"), "{both}");
    }
}
