//! Conflicts that only show once a command is about to be written: a bi-directional field
//! changed on both sides while the other side's change was in flight when this one was mapped.
//! They are settled by the field's rule, between two commands of one pair in the batch and
//! against the ledger as it is at write time: the losing field is dropped from its write, a
//! command left with nothing to write is ignored, and a side that wins after the other side's
//! value overwrote it gets its value restored.

use std::collections::HashMap;

use super::{Pending, SideWrite, WriteOutcome};
use crate::domain::{ConflictRule, FieldConflict, Jobs, LedgerBatch, System, WriteCommand};

/// The batch once conflicts are settled.
#[derive(Debug, Default, PartialEq)]
pub struct Settlement {
    /// Commands still to write (losing fields dropped).
    pub kept: Vec<Pending>,
    /// Commands with nothing left to write, settled as ignored with the conflicts' notes.
    pub settled: Vec<(Pending, WriteOutcome)>,
    /// Winning values to restore on the side they came from.
    pub restores: Vec<SideWrite>,
}

/// A field a command loses: (command index, ledger field name, note).
type Loss = (usize, String, String);

fn note(key: &str, rule: ConflictRule, winner: System) -> String {
    format!(
        "conflict on {key}: both sides changed it; {} keeps the {} value",
        rule.as_str(),
        winner.as_str()
    )
}

/// Settles the batch's conflicts by each field's rule.
pub fn settle_conflicts(fresh: Vec<Pending>, ledgers: &LedgerBatch, jobs: &Jobs) -> Settlement {
    let mut lost = within_batch(&fresh);
    let restores = against_ledger(&fresh, ledgers, jobs, &mut lost);
    let (kept, settled) = drop_lost(fresh, lost);
    Settlement {
        kept,
        settled,
        restores,
    }
}

/// Two opposite commands of one pair in this batch: neither is written yet, so the rule picks
/// which field write goes ahead.
fn within_batch(fresh: &[Pending]) -> Vec<Loss> {
    let mut pairs: HashMap<(&str, String), Vec<usize>> = HashMap::new();
    for (i, p) in fresh.iter().enumerate() {
        if !p.command.conflicts.is_empty() {
            let pair = (p.command.job.as_str(), p.command.ledger_key.to_string());
            pairs.entry(pair).or_default().push(i);
        }
    }
    let mut lost = Vec::new();
    for members in pairs.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                lost.extend(opposed(fresh, i, j));
            }
        }
    }
    lost
}

/// The fields commands `i` and `j` both write with different values, each given to its loser.
fn opposed(fresh: &[Pending], i: usize, j: usize) -> Vec<Loss> {
    let (a, b) = (&fresh[i].command, &fresh[j].command);
    if a.source == b.source {
        return Vec::new();
    }
    let mut lost = Vec::new();
    for (key, conflict) in &a.conflicts {
        let (Some(sa), Some(sb)) = (a.field_states.get(key), b.field_states.get(key)) else {
            continue;
        };
        if !b.conflicts.contains_key(key) || sa.gainsight == sb.gainsight {
            continue;
        }
        let rule = conflict.rule;
        let a_wins = rule.source_wins(a.source, a.source_changed_at_ms, b.source_changed_at_ms);
        let (loser, winner) = if a_wins { (j, a.source) } else { (i, b.source) };
        lost.push((loser, key.clone(), note(key, rule, winner)));
    }
    lost
}

/// Against the ledger: the other side's value was synced onto this side after this change was
/// made. A losing field joins `lost`; a winning one is restored on its own side.
fn against_ledger(
    fresh: &[Pending],
    ledgers: &LedgerBatch,
    jobs: &Jobs,
    lost: &mut Vec<Loss>,
) -> Vec<SideWrite> {
    let mut restores = Vec::new();
    for (i, p) in fresh.iter().enumerate() {
        let c = &p.command;
        let Some(record) = ledgers.get(&c.job, &c.ledger_key) else {
            continue;
        };
        for (key, conflict) in &c.conflicts {
            let (Some(last), Some(mine)) = (record.fields.get(key), c.field_states.get(key)) else {
                continue;
            };
            let already_lost = lost.iter().any(|(l, k, _)| *l == i && k == key);
            let at = c.source_changed_at_ms;
            if already_lost || !last.both_changed(c.source, at, mine.hash_in(c.source)) {
                continue;
            }
            if !conflict.rule.source_wins(c.source, at, last.changed_at_ms) {
                lost.push((i, key.clone(), note(key, conflict.rule, c.target)));
                continue;
            }
            tracing::info!(job = %c.job, ledger_key = %c.ledger_key, field = %key, "{}", note(key, conflict.rule, c.source));
            restores.extend(restore(jobs, c, conflict));
        }
    }
    restores
}

/// The winning source value written back on its own side, addressed by its record id.
fn restore(jobs: &Jobs, c: &WriteCommand, conflict: &FieldConflict) -> Option<SideWrite> {
    let job = jobs.get(&c.job)?;
    let id = match c.source {
        System::Salesforce => c.salesforce_id.as_deref(),
        System::Gainsight => c.ledger_key.gainsight_id(),
    }?;
    Some(SideWrite::new(
        (&c.job, &c.ledger_key),
        (c.source, &conflict.source_object),
        (job.id_field_in(c.source), id),
        (&conflict.source_field, conflict.source_value.clone()),
    ))
}

/// Drops each lost field from its command; commands left empty are settled as ignored.
fn drop_lost(
    mut fresh: Vec<Pending>,
    lost: Vec<Loss>,
) -> (Vec<Pending>, Vec<(Pending, WriteOutcome)>) {
    let mut notes: HashMap<usize, Vec<String>> = HashMap::new();
    let mut emptied = Vec::new();
    for (i, key, why) in lost {
        let cmd = &mut fresh[i].command;
        tracing::info!(job = %cmd.job, ledger_key = %cmd.ledger_key, "{why}");
        if cmd.drop_field(&key) {
            emptied.push(i);
        }
        notes.entry(i).or_default().push(why);
    }
    let mut kept = Vec::with_capacity(fresh.len());
    let mut settled = Vec::new();
    for (i, p) in fresh.into_iter().enumerate() {
        if emptied.contains(&i) {
            let reason = notes.remove(&i).unwrap_or_default().join("; ");
            settled.push((p, WriteOutcome::Ignored { reason }));
        } else {
            kept.push(p);
        }
    }
    (kept, settled)
}
