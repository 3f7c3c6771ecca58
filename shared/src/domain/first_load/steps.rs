//! A first load as steps, and where a load that runs across many invocations stands. The plan
//! becomes a list of steps: every link first (a ledger write, nothing written to either system),
//! then every write (the record as the plan read it, sent as a forced change as of its own
//! modification stamp, which creates its twin or updates it). The steps are stored in chunks; each invocation applies the next chunk
//! and moves the checkpoint on only if no other invocation moved it, so a load killed half way
//! goes on from its last checkpoint. A chunk applied twice (killed after its writes, before its
//! checkpoint) writes nothing twice: links are the same ledger write again, and the pusher
//! writes a record pair by its keys (a Salesforce upsert by the external id, a Gainsight lookup
//! by its key before any insert), finding the second write already done.

use serde::{Deserialize, Serialize};

use super::{Action, Counts, LinkedBy, PlanRow, PlanRows, Snapshot};
use crate::domain::{Fields, System};

/// Steps per stored chunk, and so per invocation: a chunk's ledger writes and sends take
/// seconds, far under Lambda's 15 minutes (the store keeps a chunk in as many items as its
/// records need).
pub const CHUNK: usize = 2_000;

/// One step of a load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum Step {
    /// Record in the ledger that these two are a pair (why: `by`).
    #[serde(rename_all = "camelCase")]
    Link {
        gsid: String,
        salesforce_id: String,
        by: String,
    },
    /// Write the record `id` of `from` to the other side: `record` as the plan read it, or, when
    /// the step does not carry it, as read again where it lives.
    Write {
        from: System,
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<Fields>,
    },
}

/// Where each record of a snapshot is in its side's table, by id (`plan_keeping_rows`).
pub struct RecordRows {
    pub(super) gainsight: super::IdIndex,
    pub(super) salesforce: super::IdIndex,
}

impl RecordRows {
    /// Gives each write of `steps` its record as `snapshot` holds it, so that applying the step
    /// needs no read: the values the plan compared are the values written.
    pub fn carry(&self, steps: &mut [Step], snapshot: &Snapshot) {
        for step in steps {
            if let Step::Write { from, id, record } = step {
                let (table, rows) = match from {
                    System::Gainsight => (&snapshot.gainsight, &self.gainsight),
                    System::Salesforce => (&snapshot.salesforce, &self.salesforce),
                };
                *record = rows.record_of(table, id);
            }
        }
    }
}

/// The steps of `rows`: links first, so that every write finds its pair in the ledger; then a
/// write from Gainsight of each record created in Salesforce, from Salesforce of each created in
/// Gainsight, and from each side that a pair's differing fields are taken from. A row the
/// target would refuse writes nothing (its pair is still linked). Made as they are taken, so
/// that a load's steps are never all in memory at once.
pub fn steps(rows: &PlanRows) -> impl Iterator<Item = Step> + '_ {
    let links = rows.iter().filter_map(|row| match row.action {
        Action::Pair(LinkedBy::Identifier(by) | LinkedBy::MatchKey(by)) => Some(Step::Link {
            gsid: row.gsid?,
            salesforce_id: row.salesforce_id?,
            by,
        }),
        _ => None,
    });
    let writes = rows.iter().flat_map(|row| writes_of(&row));
    links.chain(writes)
}

fn writes_of(row: &PlanRow) -> Vec<Step> {
    if row.refused.is_some() {
        return Vec::new();
    }
    let write = |from: System, id: &Option<String>| {
        (id.clone()).map(|id| Step::Write {
            from,
            id,
            record: None,
        })
    };
    match &row.action {
        Action::CreateInSalesforce => write(System::Gainsight, &row.gsid).into_iter().collect(),
        Action::CreateInGainsight => write(System::Salesforce, &row.salesforce_id)
            .into_iter()
            .collect(),
        Action::Pair(_) => {
            let mut from: Vec<System> = row.updates.iter().map(|u| u.target.other()).collect();
            from.sort();
            from.dedup();
            (from.into_iter())
                .filter_map(|side| match side {
                    System::Gainsight => write(side, &row.gsid),
                    System::Salesforce => write(side, &row.salesforce_id),
                })
                .collect()
        }
        Action::NoTwin(_) | Action::NotLoaded(_) | Action::Ambiguous { .. } => Vec::new(),
    }
}

/// Where a stored load stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstLoadState {
    /// Chunks remain to apply.
    Applying,
    /// Every chunk applied.
    Done,
    /// Stopped by an operator; the chunks not applied never will be.
    Cancelled,
}

/// A load as stored: its run, its plan's counts, and how many of its chunks are applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirstLoad {
    pub job: String,
    /// The run that logs the load, and whose id the load's changes carry.
    pub run: String,
    pub state: FirstLoadState,
    pub chunks: usize,
    /// Chunks applied: the checkpoint.
    pub done: usize,
    pub steps: usize,
    pub counts: Counts,
    /// Records read from each side when it was planned.
    pub read: Read,
    /// The only side the load writes from; `None` for both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<System>,
    pub started_ms: i64,
}

/// How far a load is: its links made and its writes queued, each of how many. Steps are
/// stored links first, so the first `links` steps applied are links and the rest writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub linked: usize,
    pub links: usize,
    pub queued: usize,
    pub writes: usize,
}

impl FirstLoad {
    /// Steps applied: every step of the chunks at the checkpoint.
    pub fn applied(&self) -> usize {
        (self.done * CHUNK).min(self.steps)
    }

    pub fn progress(&self) -> Progress {
        let links = self.counts.link_by_identifier + self.counts.link_by_match_key;
        let applied = self.applied();
        Progress {
            linked: applied.min(links),
            links,
            queued: applied.saturating_sub(links),
            writes: self.steps.saturating_sub(links),
        }
    }
}

/// Records a load read from each side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    pub gainsight: usize,
    pub salesforce: usize,
}

/// What an invocation asked to run a load does, given the job's stored load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// No load in progress: read both sides, plan and store a new one.
    Plan,
    /// Apply this chunk of the load in progress.
    Apply(usize),
}

/// The next thing to do for a job whose stored load is `stored`. (The checkpoint move that
/// applies the last chunk also marks the load done, so a load in progress has a chunk left.)
pub fn next(stored: Option<&FirstLoad>) -> Next {
    match stored {
        Some(load) if load.state == FirstLoadState::Applying && load.done < load.chunks => {
            Next::Apply(load.done)
        }
        _ => Next::Plan,
    }
}

/// The state a load is in once chunk `index` of `chunks` is applied.
pub fn after_chunk(index: usize, chunks: usize) -> FirstLoadState {
    if index + 1 >= chunks {
        FirstLoadState::Done
    } else {
        FirstLoadState::Applying
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::first_load::{FieldUpdate, Table};
    use serde_json::json;

    fn row(gsid: Option<&str>, sfid: Option<&str>, action: Action) -> PlanRow {
        PlanRow {
            gsid: gsid.map(Into::into),
            salesforce_id: sfid.map(Into::into),
            action,
            updates: Vec::new(),
            refused: None,
        }
    }

    fn update(target: System) -> FieldUpdate {
        FieldUpdate {
            target,
            field: "Phone".into(),
            value: json!("1"),
            was: json!("2"),
        }
    }

    #[test]
    fn links_come_first_then_writes_from_the_side_each_value_is_taken_from() {
        let mut both = row(Some("G3"), Some("S3"), Action::Pair(LinkedBy::Ledger));
        both.updates = vec![update(System::Salesforce), update(System::Gainsight)];
        let mut linked = row(
            Some("G4"),
            Some("S4"),
            Action::Pair(LinkedBy::MatchKey("match key Domain ~ Website".into())),
        );
        linked.updates = vec![update(System::Salesforce), update(System::Salesforce)];
        let rows = vec![
            row(Some("G1"), None, Action::CreateInSalesforce),
            row(None, Some("S2"), Action::CreateInGainsight),
            both,
            linked,
            row(Some("G5"), Some("S5"), Action::Pair(LinkedBy::Ledger)),
            row(
                Some("G6"),
                None,
                Action::Ambiguous {
                    candidates: vec!["S6".into(), "S7".into()],
                    why: "two".into(),
                },
            ),
            row(None, Some("S8"), Action::NoTwin(System::Salesforce)),
        ];
        let write = |from, id: &str| Step::Write {
            from,
            id: id.into(),
            record: None,
        };
        assert_eq!(
            steps(&PlanRows::from(rows)).collect::<Vec<_>>(),
            vec![
                Step::Link {
                    gsid: "G4".into(),
                    salesforce_id: "S4".into(),
                    by: "match key Domain ~ Website".into()
                },
                write(System::Gainsight, "G1"),
                write(System::Salesforce, "S2"),
                write(System::Gainsight, "G3"),
                write(System::Salesforce, "S3"),
                write(System::Gainsight, "G4"),
            ]
        );
    }

    #[test]
    fn writes_carry_their_records_from_the_snapshot() {
        let job = crate::domain::Jobs::builtin();
        let job = job.named("company_account").expect("shipped");
        let rec = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
        let snapshot = Snapshot {
            gainsight: Table::from(vec![rec(json!({"Gsid": "G1", "Name": "A"}))]),
            salesforce: Table::from(vec![rec(json!({"Id": "S1", "Name": "B"}))]),
            ..Snapshot::default()
        };
        let write = |from, id: &str| Step::Write {
            from,
            id: id.into(),
            record: None,
        };
        let mut steps = vec![
            write(System::Salesforce, "S1"),
            write(System::Gainsight, "G1"),
            write(System::Gainsight, "G2"),
        ];
        let (_, rows) = super::super::plan_keeping_rows(job, &snapshot, None);
        rows.carry(&mut steps, &snapshot);
        let carried = |steps: &[Step]| -> Vec<Option<serde_json::Value>> {
            (steps.iter())
                .map(|s| match s {
                    Step::Write { record, .. } => {
                        record.as_ref().and_then(|r| r.get("Name").cloned())
                    }
                    Step::Link { .. } => None,
                })
                .collect()
        };
        assert_eq!(carried(&steps), [Some(json!("B")), Some(json!("A")), None]);
    }

    #[test]
    fn steps_are_stored_as_tagged_json() {
        let link = Step::Link {
            gsid: "G1".into(),
            salesforce_id: "S1".into(),
            by: "x".into(),
        };
        let text = serde_json::to_string(&link).unwrap();
        assert_eq!(
            text,
            r#"{"step":"link","gsid":"G1","salesforceId":"S1","by":"x"}"#
        );
        assert_eq!(serde_json::from_str::<Step>(&text).unwrap(), link);
    }

    fn stored(state: FirstLoadState, done: usize) -> FirstLoad {
        FirstLoad {
            job: "j".into(),
            run: "r".into(),
            state,
            chunks: 3,
            done,
            steps: 5_000,
            counts: Counts::default(),
            read: Read::default(),
            started_ms: 1,
            from: None,
        }
    }

    #[test]
    fn progress_counts_links_first_then_writes() {
        let mut load = stored(FirstLoadState::Applying, 1);
        (load.steps, load.chunks) = (CHUNK + 500, 2);
        load.counts.link_by_identifier = CHUNK - 100;
        load.counts.link_by_match_key = 50;
        let p = load.progress();
        assert_eq!(
            (p.linked, p.links, p.queued, p.writes),
            (CHUNK - 50, CHUNK - 50, 50, 550)
        );
        load.done = 2;
        let p = load.progress();
        assert_eq!((p.linked, p.queued), (CHUNK - 50, 550));
    }

    #[test]
    fn a_load_in_progress_goes_on_from_its_checkpoint_and_an_ended_one_is_planned_anew() {
        assert_eq!(next(None), Next::Plan);
        assert_eq!(
            next(Some(&stored(FirstLoadState::Applying, 0))),
            Next::Apply(0)
        );
        assert_eq!(
            next(Some(&stored(FirstLoadState::Applying, 2))),
            Next::Apply(2)
        );
        assert_eq!(after_chunk(1, 3), FirstLoadState::Applying);
        assert_eq!(after_chunk(2, 3), FirstLoadState::Done);
        assert_eq!(next(Some(&stored(FirstLoadState::Done, 3))), Next::Plan);
        assert_eq!(
            next(Some(&stored(FirstLoadState::Cancelled, 1))),
            Next::Plan
        );
    }
}
