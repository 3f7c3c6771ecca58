//! Changes just parked, looked up once more: a parent that synced while they were being parked
//! may have looked for waiting changes before they were there, so nothing would replay them.

use shared::domain::waiting::WaitingChange;
use shared::domain::{ChangeEvent, Lookups, Mapper, Runs};
use shared::lambda::Deadline;

use crate::give_up::Failures;
use crate::{MapperFn, Pass, Summary};

/// What a second lookup says of a parked change's parent.
enum ParentSeen {
    Found,
    /// Not there yet: the change stays parked for its replay.
    Missing,
    /// The lookup failed: whether the parent is there is not known.
    Unknown,
}

impl MapperFn {
    /// Looks the parents of the changes just parked up once more: a parent that synced between
    /// the batch's lookup and the parking may have been checked for waiting changes before they
    /// were there, so nothing would replay them. Those whose parent is there now are taken out
    /// of the waiting store and mapped again; those whose second lookup failed are tried again
    /// through the queue (staying parked meanwhile), except on their last delivery, where the
    /// poller's re-check is left to find them. The messages to retry, with why.
    pub(crate) async fn recheck_parked(
        &self,
        parked: Vec<(String, WaitingChange)>,
        (last, now_ms, deadline): (&std::collections::HashSet<String>, i64, Deadline),
        summary: &mut Summary,
        runs: &mut Runs,
    ) -> Failures {
        let (Some(store), false) = (&self.waiting, parked.is_empty()) else {
            return Vec::new();
        };
        let changes: Vec<(String, ChangeEvent)> = (parked.iter())
            .map(|(id, w)| (id.clone(), w.change.clone()))
            .collect();
        let lookups = self.run_lookups(&changes, deadline).await;
        let mut unknown: Failures = Vec::new();
        let mut found: Vec<(String, WaitingChange)> = Vec::new();
        for (id, waiting) in parked {
            match self.parent_seen(&waiting, &lookups) {
                ParentSeen::Found => found.push((id, waiting)),
                ParentSeen::Unknown if !last.contains(&id) => {
                    unknown.push((id, "its parent could not be looked up again".to_string()))
                }
                ParentSeen::Unknown | ParentSeen::Missing => {}
            }
        }
        if !unknown.is_empty() {
            tracing::warn!(
                changes = unknown.len(),
                "parents of parked changes not looked up again; their messages are tried again"
            );
        }
        if found.is_empty() {
            return unknown;
        }
        let ids: Vec<&String> = found.iter().map(|(id, _)| id).collect();
        let again: Vec<(String, ChangeEvent)> = changes
            .into_iter()
            .filter(|(id, _)| ids.contains(&id))
            .collect();
        let waits: Vec<WaitingChange> = found.into_iter().map(|(_, w)| w).collect();
        if let Err(e) = store.release(&waits).await {
            tracing::warn!(changes = waits.len(), error = %e, "changes whose parent came not taken out of the waiting store; a later replay finds them synced");
        }
        tracing::info!(
            changes = again.len(),
            "parents synced while their changes were being parked: mapped again"
        );
        let pass = Pass {
            lookups: &lookups,
            last,
            now_ms,
        };
        let out = self.map_batch(&again, &pass, summary, runs).await;
        let superseded = (out.superseded.into_iter()).map(|id| {
            (
                id,
                "its ledger record changed while it was mapped".to_string(),
            )
        });
        out.failed
            .into_iter()
            .chain(superseded)
            .chain(unknown)
            .collect()
    }

    /// What `lookups` say of the parent `waiting` waits for.
    fn parent_seen(&self, waiting: &WaitingChange, lookups: &Lookups) -> ParentSeen {
        let Some(job) = self.jobs.get(&waiting.job) else {
            return ParentSeen::Missing;
        };
        let mapper = Mapper::new(job, Some(&self.schemas));
        let searched: Vec<(usize, Vec<String>)> = mapper
            .lookup_tuples(&waiting.change)
            .into_iter()
            .filter(|(i, _)| job.derived[*i].lookup.object == waiting.parent.object)
            .collect();
        if searched
            .iter()
            .any(|(i, tuple)| lookups.found(&job.name, *i, tuple))
        {
            ParentSeen::Found
        } else if searched
            .iter()
            .any(|(i, _)| lookups.has_failed(&job.name, *i))
        {
            ParentSeen::Unknown
        } else {
            ParentSeen::Missing
        }
    }
}
