//! Changes parked until the record they refer to is synced: which parent a change waits for,
//! which parents a synced pair satisfies, and when a wait is re-checked or ends in an error.
//!
//! A change whose lookup finds no parent (a Case whose Company has no Account yet) is not tried
//! again on every delivery: it is parked under its parent and acknowledged. The pusher replays the
//! changes parked on a pair as soon as it records the pair synced; the poller re-checks waits
//! that nothing replayed (the parent was created by hand, a replay was lost) and turns a wait
//! longer than the job's `wait_for_parent_hours` into an error naming the parent.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ChangeEvent, Fields, Job, Jobs, LedgerKey, LedgerRecord, LedgerUpdate, System};

/// How long a change waits for its parent when the job does not say.
pub const DEFAULT_WAIT_HOURS: u32 = 24;

/// How long after it was parked (or last re-checked) a waiting change is looked up again by the
/// poller, when nothing replayed it.
pub const RECHECK_MS: i64 = 5 * 60 * 1000;

/// The record a change waits for: the object a lookup searched and the values it matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    pub system: System,
    pub object: String,
    /// The lookup's match fields on the parent, with the values searched, in the lookup's order.
    pub matches: Vec<(String, String)>,
}

/// A parent as the waiting store files it: system, object and matched values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParentKey(String);

impl ParentKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ParentRef {
    pub fn key(&self) -> ParentKey {
        let matches: Vec<String> = self
            .matches
            .iter()
            .map(|(field, value)| format!("{field}={value}"))
            .collect();
        ParentKey(format!(
            "{}/{}/{}",
            self.system.as_str(),
            self.object,
            matches.join("&")
        ))
    }
}

impl fmt::Display for ParentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let matches: Vec<String> = self
            .matches
            .iter()
            .map(|(field, value)| format!("{field} = {value}"))
            .collect();
        write!(
            f,
            "the {} {} where {}",
            self.system.label(),
            self.object,
            matches.join(" and ")
        )
    }
}

/// One change waiting for its parent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaitingChange {
    /// The job whose mapping needs the parent.
    pub job: String,
    /// The waiting record's ledger key in that job.
    pub key: LedgerKey,
    pub parent: ParentRef,
    pub change: ChangeEvent,
    /// When the change first started waiting (kept across replays that found no parent yet).
    pub since_ms: i64,
    /// When it was parked this time.
    pub filed_at_ms: i64,
    /// What the lookup said.
    pub reason: String,
}

impl WaitingChange {
    /// Parks `change` at `now_ms`; a replayed change keeps the time it first started waiting.
    pub fn new(
        job: &str,
        key: LedgerKey,
        parent: ParentRef,
        change: &ChangeEvent,
        reason: &str,
        now_ms: i64,
    ) -> Self {
        Self {
            job: job.to_string(),
            key,
            parent,
            since_ms: change.waiting_since_ms.unwrap_or(now_ms).min(now_ms),
            filed_at_ms: now_ms,
            change: change.clone(),
            reason: reason.to_string(),
        }
    }

    /// Where the change is filed under its parent: one slot per job, record and change, so
    /// several changes of one record wait side by side and replay in change order.
    pub fn slot(&self) -> String {
        format!(
            "{}#{}#{:020}#{}",
            self.job,
            self.key,
            self.change.occurred_at_ms.max(0),
            self.change.event_id
        )
    }

    /// The change to queue again, remembering since when it has waited.
    pub fn replay(&self) -> ChangeEvent {
        let mut change = self.change.clone();
        change.waiting_since_ms = Some(self.since_ms);
        change
    }

    /// What the waiting record's ledger and run say while it waits.
    pub fn waiting_message(&self, jobs: &Jobs) -> String {
        waiting_message(jobs, &self.parent)
    }
}

/// `waiting for <job> <parent>`: names the job that syncs the parent, when one does.
pub fn waiting_message(jobs: &Jobs, parent: &ParentRef) -> String {
    let syncer = jobs
        .iter()
        .find(|j| j.object_in(parent.system) == parent.object)
        .map(|j| format!("{} ", j.name))
        .unwrap_or_default();
    format!("waiting for {syncer}{parent}: the change is replayed when it syncs")
}

/// What the poller does with a waiting change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Still within its wait and recently looked up: leave it.
    Wait,
    /// Look its parent up again (queue the change once more).
    Recheck,
    /// Waited longer than the job allows: an error naming the parent and what to do.
    Expire { message: String },
}

/// The poller's decision for `parked` at `now_ms`, given the job's longest wait.
pub fn sweep(parked: &WaitingChange, now_ms: i64, wait_hours: u32) -> Sweep {
    let max_wait_ms = i64::from(wait_hours) * 3_600_000;
    if now_ms - parked.since_ms >= max_wait_ms {
        return Sweep::Expire {
            message: format!(
                "gave up after waiting {wait_hours} h for {}: {}; create or link that record, then resync this one (syncctl resync --job {} --ids {})",
                parked.parent, parked.reason, parked.job, parked.change.record_id
            ),
        };
    }
    if now_ms - parked.filed_at_ms >= RECHECK_MS {
        Sweep::Recheck
    } else {
        Sweep::Wait
    }
}

/// The parents a pair of `job` now satisfies, once it is recorded synced with these ids: every
/// object a job's lookup searches that is this job's object in that system, with the values the
/// pair holds for the lookup's match fields there (its ids, the identifiers that carry the other
/// side's id, and the fields just written to `written`'s system).
pub fn parents_of(
    jobs: &Jobs,
    job: &Job,
    (gsid, sfid): (Option<&str>, Option<&str>),
    written: Option<(System, &Fields)>,
) -> Vec<ParentKey> {
    let mut keys = Vec::new();
    for system in [System::Gainsight, System::Salesforce] {
        let known = known_values(job, system, (gsid, sfid), written);
        for other in jobs.iter() {
            for derived in other.derived.iter().filter(|d| d.target == system) {
                if derived.lookup.object != job.object_in(system) {
                    continue;
                }
                let matches: Option<Vec<(String, String)>> = derived
                    .lookup
                    .matches
                    .iter()
                    .map(|m| Some((m.field.clone(), known(&m.field)?)))
                    .collect();
                if let Some(matches) = matches {
                    let parent = ParentRef {
                        system,
                        object: derived.lookup.object.clone(),
                        matches,
                    };
                    if !keys.contains(&parent.key()) {
                        keys.push(parent.key());
                    }
                }
            }
        }
    }
    keys
}

/// The parents whose waiting changes a ledger update of `job`'s pair under `key` releases: those
/// of every pair recorded synced. Not only a first sync: a replay that failed (a store or queue
/// error, a ledger write tried again) is made good by the pair's next sync, and asking costs one
/// read of the parents' markers per batch (see the waiting store).
pub fn released_by(
    jobs: &Jobs,
    job: &Job,
    (key, before): (&LedgerKey, Option<&LedgerRecord>),
    update: &LedgerUpdate,
    written: (System, &Fields),
) -> Vec<ParentKey> {
    let LedgerUpdate::Synced { salesforce_id, .. } = update else {
        return Vec::new();
    };
    let gsid = key.gainsight_id();
    let sfid = salesforce_id
        .as_deref()
        .or_else(|| before.and_then(|r| r.salesforce_id.as_deref()))
        .or_else(|| key.salesforce_only_id());
    parents_of(jobs, job, (gsid, sfid), Some(written))
}

/// The value a synced pair holds for a field of its record in `system`, if it is known.
fn known_values<'a>(
    job: &'a Job,
    system: System,
    (gsid, sfid): (Option<&'a str>, Option<&'a str>),
    written: Option<(System, &'a Fields)>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |field: &str| {
        let own = match system {
            System::Gainsight => gsid,
            System::Salesforce => sfid,
        };
        if field == job.id_field_in(system) {
            return own.map(str::to_string);
        }
        // An identifier whose other side is the other system's id holds that id here.
        let carried = job.identifiers.iter().find_map(|i| {
            let other_id = job.id_field_in(system.other());
            (i.field_in(system) == field && i.field_in(system.other()) == other_id).then_some(())
        });
        let other_id = match system {
            System::Gainsight => sfid,
            System::Salesforce => gsid,
        };
        if let (Some(()), Some(id)) = (carried, other_id) {
            return Some(id.to_string());
        }
        let (written_to, fields) = written?;
        if written_to != system {
            return None;
        }
        match fields.get(field)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Operation, SourceRecord};

    fn case_change(at: i64) -> ChangeEvent {
        let record = SourceRecord {
            source: System::Gainsight,
            object: "Case".into(),
            id: "C1".into(),
            fields: Fields::new(),
        };
        ChangeEvent::pushed(record, format!("e{at}"), Operation::Created, at, at)
    }

    fn account_parent(gsid: &str) -> ParentRef {
        ParentRef {
            system: System::Salesforce,
            object: "Account".into(),
            matches: vec![("Gainsight_Company_Id__c".into(), gsid.into())],
        }
    }

    #[test]
    fn a_synced_company_is_the_parent_its_cases_and_people_wait_for() {
        let jobs = Jobs::builtin();
        let company = jobs.get("company_account").expect("builtin job");
        let keys = parents_of(&jobs, company, (Some("G1"), Some("001A")), None);
        // Cases and Persons look the Account up by the Company's GSID; Contacts and Salesforce
        // Cases look the Company up by the Account's id.
        assert!(keys.contains(&account_parent("G1").key()), "{keys:?}");
        let company_parent = ParentRef {
            system: System::Gainsight,
            object: "Company".into(),
            matches: vec![("SfdcAccountId".into(), "001A".into())],
        };
        assert!(keys.contains(&company_parent.key()), "{keys:?}");
        assert_eq!(
            keys.len(),
            2,
            "one key per parent, however many jobs wait: {keys:?}"
        );
    }

    #[test]
    fn a_pair_without_its_salesforce_id_satisfies_only_lookups_by_gsid() {
        let jobs = Jobs::builtin();
        let company = jobs.get("company_account").expect("builtin job");
        let keys = parents_of(&jobs, company, (Some("G1"), None), None);
        assert_eq!(keys, vec![account_parent("G1").key()]);
        let case = jobs.get("case_case").expect("builtin job");
        assert!(
            parents_of(&jobs, case, (Some("K1"), Some("500A")), None).is_empty(),
            "nothing looks a Case up"
        );
    }

    fn synced(salesforce_id: Option<&str>) -> LedgerUpdate {
        LedgerUpdate::Synced {
            salesforce_id: salesforce_id.map(str::to_string),
            source: System::Gainsight,
            source_changed_at_ms: 1,
            fields: Default::default(),
        }
    }

    #[test]
    fn every_sync_of_a_pair_releases_what_waits_for_it() {
        let jobs = Jobs::builtin();
        let company = jobs.get("company_account").expect("builtin job");
        let key = LedgerKey::Gainsight("G1".into());
        let written = (System::Salesforce, &Fields::new());
        let first = released_by(&jobs, company, (&key, None), &synced(Some("001A")), written);
        assert_eq!(first.len(), 2, "{first:?}");
        let mut before = LedgerRecord::new("company_account", key.clone());
        before.apply(&synced(Some("001A")), 5, "run");
        let again = released_by(
            &jobs,
            company,
            (&key, Some(&before)),
            &synced(None),
            written,
        );
        assert_eq!(again, first, "the Salesforce id known from the ledger");
        let failed = LedgerUpdate::Failed {
            message: "x".into(),
        };
        assert!(released_by(&jobs, company, (&key, None), &failed, written).is_empty());
    }

    #[test]
    fn a_replayed_change_keeps_the_time_it_started_waiting() {
        let first = WaitingChange::new(
            "case_case",
            LedgerKey::Gainsight("C1".into()),
            account_parent("G1"),
            &case_change(100),
            "no Account",
            1_000,
        );
        let again = WaitingChange::new(
            "case_case",
            first.key.clone(),
            first.parent.clone(),
            &first.replay(),
            "no Account",
            9_000,
        );
        assert_eq!((again.since_ms, again.filed_at_ms), (1_000, 9_000));
        assert_eq!(first.slot(), again.slot(), "parked again in the same slot");
    }

    #[test]
    fn a_wait_is_rechecked_every_few_minutes_and_ends_after_the_jobs_hours() {
        let parked = WaitingChange::new(
            "case_case",
            LedgerKey::Gainsight("C1".into()),
            account_parent("G1"),
            &case_change(100),
            "no Account",
            0,
        );
        assert_eq!(sweep(&parked, RECHECK_MS - 1, 24), Sweep::Wait);
        assert_eq!(sweep(&parked, RECHECK_MS, 24), Sweep::Recheck);
        let Sweep::Expire { message } = sweep(&parked, 24 * 3_600_000, 24) else {
            panic!("a day's wait ends");
        };
        assert!(
            message.contains("the Salesforce Account where Gainsight_Company_Id__c = G1")
                && message.contains("syncctl resync --job case_case --ids C1"),
            "{message}"
        );
        assert_eq!(sweep(&parked, 3_600_000, 1), sweep(&parked, 7_200_000, 1));
    }

    #[test]
    fn the_waiting_message_names_the_job_that_syncs_the_parent() {
        let jobs = Jobs::builtin();
        assert_eq!(
            waiting_message(&jobs, &account_parent("G1")),
            "waiting for company_account the Salesforce Account where Gainsight_Company_Id__c = G1: the change is replayed when it syncs"
        );
    }
}
