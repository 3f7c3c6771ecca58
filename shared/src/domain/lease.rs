//! Record leases: while one pusher writes a record pair, no other pusher writes it. Without them
//! two pushers holding two changes of one record could both write it, and the older write could
//! land last; the ledger's versioned write keeps the ledger right but not the target. A pusher
//! takes the leases of its batch before it reads the ledger, writes only the records it leased,
//! and gives the leases back once the ledger says what it wrote; a write whose record is leased
//! by another pusher waits and comes again. Under the lease, a write keyed by a Salesforce Id
//! whose pair has moved to its GSID since it was mapped follows the move the same way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::push::Pending;
use super::LedgerKey;

/// How long a lease holds when its pusher dies without giving it back: longer than the pusher's
/// timeout (120 s in the template), so a live pusher never loses its lease mid-write.
pub const LEASE: Duration = Duration::from_secs(150);

/// How long a write waits when another pusher holds its record: a pusher's batch usually takes
/// well under a second, and SQS delays count in whole seconds.
pub const LEASE_WAIT: Duration = Duration::from_secs(2);

/// The lease of one record pair in one job.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordLease {
    pub job: String,
    pub key: LedgerKey,
}

impl RecordLease {
    pub fn of(pending: &Pending) -> Self {
        Self {
            job: pending.command.job.clone(),
            key: pending.command.ledger_key.clone(),
        }
    }
}

/// The leases a batch needs, each once, in the batch's order (writes of one pair to both
/// systems share one lease).
pub fn leases_for(batch: &[Pending]) -> Vec<RecordLease> {
    let mut seen = HashSet::new();
    batch
        .iter()
        .map(RecordLease::of)
        .filter(|lease| seen.insert(lease.clone()))
        .collect()
}

/// The batch split by whether this pusher holds the record's lease: `(write now, wait)`.
pub fn split_by_lease(
    batch: Vec<Pending>,
    taken: &HashSet<RecordLease>,
) -> (Vec<Pending>, Vec<Pending>) {
    batch
        .into_iter()
        .partition(|p| taken.contains(&RecordLease::of(p)))
}

/// The leases `answers` says were taken (one answer per lease, in order).
pub fn taken(leases: &[RecordLease], answers: &[bool]) -> HashSet<RecordLease> {
    leases
        .iter()
        .zip(answers)
        .filter(|(_, taken)| **taken)
        .map(|(lease, _)| lease.clone())
        .collect()
}

/// The Salesforce-only keys of the batch's writes, by job: a pair first seen in Salesforce is
/// keyed by its Salesforce Id until its Gainsight twin exists, then moves to the GSID, and a write
/// mapped before the move must follow it.
pub fn salesforce_only_keys(batch: &[Pending]) -> BTreeMap<String, Vec<LedgerKey>> {
    let mut keys: BTreeMap<String, Vec<LedgerKey>> = BTreeMap::new();
    for p in batch {
        if p.command.ledger_key.salesforce_only_id().is_some() {
            let job = keys.entry(p.command.job.clone()).or_default();
            if !job.contains(&p.command.ledger_key) {
                job.push(p.command.ledger_key.clone());
            }
        }
    }
    keys
}

/// The batch split by whether the write's key has moved (`moves`: by job and key moved from, the
/// key moved to): `(unmoved, moved)`, the moved ones re-keyed. A moved write is not written under
/// the lease of its old key: it comes again under its new one, whose ledger says what was
/// written since.
pub fn follow_moves(
    batch: Vec<Pending>,
    moves: &HashMap<(String, LedgerKey), LedgerKey>,
) -> (Vec<Pending>, Vec<Pending>) {
    let mut unmoved = Vec::with_capacity(batch.len());
    let mut moved = Vec::new();
    for mut p in batch {
        let key = (p.command.job.clone(), p.command.ledger_key.clone());
        match moves.get(&key) {
            Some(to) => {
                p.command.ledger_key = to.clone();
                moved.push(p);
            }
            None => unmoved.push(p),
        }
    }
    (unmoved, moved)
}

/// Until when a lease taken at `now_ms` holds.
pub fn until_ms(now_ms: i64) -> i64 {
    now_ms + LEASE.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{System, WriteCommand};

    fn pending(id: &str, job: &str, gsid: &str, target: System) -> Pending {
        let command: WriteCommand = serde_json::from_value(serde_json::json!({
            "job": job, "target": target, "object": "Account",
            "key": {"by": "id", "value": gsid}, "fields": {}, "ledger_key": gsid,
            "source": target.other(), "event_id": "e", "source_changed_at_ms": 1,
            "received_at_ms": 1,
        }))
        .expect("a write command");
        Pending {
            message_id: id.into(),
            command,
        }
    }

    #[test]
    fn one_lease_per_pair_even_when_both_systems_are_written() {
        let batch = vec![
            pending("m1", "company", "G1", System::Salesforce),
            pending("m2", "company", "G1", System::Gainsight),
            pending("m3", "company", "G2", System::Salesforce),
            pending("m4", "person", "G1", System::Salesforce),
        ];
        let leases = leases_for(&batch);
        let names: Vec<(String, String)> = leases
            .iter()
            .map(|l| (l.job.clone(), l.key.to_string()))
            .collect();
        assert_eq!(
            names,
            [("company", "G1"), ("company", "G2"), ("person", "G1")]
                .map(|(j, k)| (j.to_string(), k.to_string()))
        );
    }

    #[test]
    fn only_leased_records_are_written_now() {
        let batch = vec![
            pending("m1", "company", "G1", System::Salesforce),
            pending("m2", "company", "G1", System::Gainsight),
            pending("m3", "company", "G2", System::Salesforce),
        ];
        let leases = leases_for(&batch);
        let held = taken(&leases, &[false, true]);
        let (now, wait) = split_by_lease(batch, &held);
        let ids = |v: &[Pending]| v.iter().map(|p| p.message_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&now), ["m3"]);
        assert_eq!(ids(&wait), ["m1", "m2"]);
    }

    #[test]
    fn a_write_keyed_by_a_key_that_moved_follows_it() {
        let mut old = pending("m1", "company", "G1", System::Gainsight);
        old.command.ledger_key = LedgerKey::SalesforceOnly("001A".into());
        let batch = vec![old, pending("m2", "company", "G2", System::Gainsight)];
        let asked = salesforce_only_keys(&batch);
        assert_eq!(
            asked.into_iter().collect::<Vec<_>>(),
            [(
                "company".to_string(),
                vec![LedgerKey::SalesforceOnly("001A".into())]
            )]
        );
        let moves = HashMap::from([(
            (
                "company".to_string(),
                LedgerKey::SalesforceOnly("001A".into()),
            ),
            LedgerKey::Gainsight("G9".into()),
        )]);
        let (unmoved, moved) = follow_moves(batch.clone(), &moves);
        assert_eq!(unmoved.len(), 1);
        assert_eq!(moved[0].message_id, "m1");
        assert_eq!(
            moved[0].command.ledger_key,
            LedgerKey::Gainsight("G9".into())
        );
        let (unmoved, moved) = follow_moves(batch, &HashMap::new());
        assert_eq!((unmoved.len(), moved.len()), (2, 0), "nothing moved");
    }

    #[test]
    fn a_lease_outlasts_the_pushers_timeout() {
        // The pusher's `Timeout` as the template deploys it.
        let template = include_str!("../../../infra/template.yaml");
        let pusher = &template[template.find("  PusherFunction:").expect("the pusher")..];
        let timeout: u64 = pusher
            .lines()
            .find_map(|l| l.trim().strip_prefix("Timeout:"))
            .and_then(|t| t.trim().parse().ok())
            .expect("the pusher's Timeout");
        assert!(
            LEASE > Duration::from_secs(timeout),
            "{LEASE:?} vs {timeout} s"
        );
        assert_eq!(until_ms(1_000), 1_000 + LEASE.as_millis() as i64);
    }
}
