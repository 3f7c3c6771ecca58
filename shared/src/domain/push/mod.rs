//! The pusher's rules, as pure functions over a batch of write commands: which commands are
//! written (the newest per target record, none older than a change already written), how
//! conflicts the mapper could not see are settled (`conflicts`), how each group is split into
//! calls (`plan`), and what a write's outcome makes of the ledger and of the source record.

mod conflicts;
mod gone;
mod plan;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{
    Fields, Job, LedgerBatch, LedgerKey, LedgerUpdate, Prior, System, WriteCommand, WriteMode,
    Writeback,
};
pub use conflicts::{settle_conflicts, Settlement};

/// How long a write may be held back (a spent API budget, refused credentials, a rate limit)
/// before it is given up: each hold sends it to the queue again as a new message, so without a
/// limit a write could wait for ever and land long after anyone expects it.
pub const MAX_HOLD_MS: i64 = 7 * 24 * 3_600_000;

/// Whether a write accepted at `received_at_ms` has been held back too long to hold again.
pub fn held_too_long(received_at_ms: i64, now_ms: i64) -> bool {
    now_ms.saturating_sub(received_at_ms) > MAX_HOLD_MS
}

/// What the ledger says of a write given up for having waited too long, held back because of
/// `why`.
pub fn held_too_long_message(why: &str) -> String {
    format!(
        "not written: held back for more than {} days ({why}); resync the record once the cause is fixed",
        MAX_HOLD_MS / 86_400_000
    )
}
pub use gone::{recreate, recreating};
pub use plan::{plan_gainsight, plan_salesforce_update, Found, GainsightPlan};

/// A write command with the id of the message that carried it.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub message_id: String,
    pub command: WriteCommand,
}

/// How one record's write ended.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOutcome {
    /// Written; the id of the target record when the target said.
    Synced { target_id: Option<String> },
    /// Refused (final) or not taken yet (`retryable`).
    Failed { message: String, retryable: bool },
    /// Nothing written, on purpose (a lost conflict).
    Ignored { reason: String },
    /// An update-only write found no twin: nothing written; the write is parked in the ledger
    /// and goes along with the next write to that system (the twin's creation, if on its way).
    Unmatched { reason: String },
    /// The twin the write addressed is not there any more (deleted in the target): the pair is
    /// marked error saying so, and what to do; writing again cannot help.
    Gone { message: String },
}

impl WriteOutcome {
    pub fn failed(message: impl Into<String>) -> Self {
        WriteOutcome::Failed {
            message: message.into(),
            retryable: false,
        }
    }

    /// A record the target answered nothing for: worth trying again.
    pub fn no_result() -> Self {
        WriteOutcome::Failed {
            message: "no result for this record".into(),
            retryable: true,
        }
    }
}

/// A write to a record of the source side: its id field and value, and the fields to set (the
/// twin's id learnt, or a value restored after its side won a conflict). One that fails goes to
/// the writes queue on its own (`WritesMessage::Side`), is retried and dead-lettered like any
/// write, and one refused for good marks its pair error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideWrite {
    /// The job and ledger key of the pair it belongs to.
    pub job: String,
    pub ledger_key: LedgerKey,
    pub system: System,
    pub object: String,
    /// The field the record is addressed by (`Id`, `Gsid`).
    pub id_field: String,
    pub fields: Fields,
}

impl SideWrite {
    /// `field = value` on the record whose `id_field` is `id`, for `job`'s pair under `key`.
    pub fn new(
        (job, key): (&str, &LedgerKey),
        (system, object): (System, &str),
        (id_field, id): (&str, &str),
        (field, value): (&str, serde_json::Value),
    ) -> Self {
        let mut fields = Fields::new();
        fields.insert(id_field.into(), id.into());
        fields.insert(field.into(), value);
        Self {
            job: job.to_string(),
            ledger_key: key.clone(),
            system,
            object: object.to_string(),
            id_field: id_field.to_string(),
            fields,
        }
    }

    /// What tells this write back apart among those staged under a load: the pair, the object
    /// and what it sets, so the same write back staged twice is one, and one that sets another
    /// value is another.
    pub fn stage_key(&self) -> String {
        let fields = serde_json::Value::Object(self.fields.clone());
        let hash = super::mapping::hash(&fields);
        format!(
            "{}#{}#{}#{hash:016x}",
            self.job, self.ledger_key, self.object
        )
    }

    /// What the pair's ledger says when this write was refused for good, or ran out of tries.
    pub fn failed_message(&self, error: &str) -> String {
        let id = self
            .fields
            .get(&self.id_field)
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let set: Vec<&str> = (self.fields.keys())
            .filter(|k| **k != self.id_field)
            .map(String::as_str)
            .collect();
        format!(
            "synced, but the {} {} {id} was not updated ({}): {error}; resync the record to write it again",
            self.system.label(),
            self.object,
            set.join(", ")
        )
    }
}

/// The batch with one write per target record: the writes of a record are folded in change
/// order into one, which does what writing them one after the other would (see [`fold`]).
#[derive(Debug, Default)]
pub struct Folded {
    pub kept: Vec<Pending>,
    /// Writes folded into another.
    pub superseded: usize,
    /// The writes folded into each kept one (by its message id), in change order: when the kept
    /// write goes back to the queue, their messages go back too, so that what they carried is
    /// not lost with them; otherwise each is recorded as carried by it ([`folded_outcomes`]).
    pub folded: HashMap<String, Vec<Pending>>,
}

/// Why a change folded into a newer one has no write of its own.
pub const FOLDED: &str = "folded into a newer change of the same record in the same batch: its values went out in that change's write, whose outcome is recorded on its own";

/// The ledger entries of the writes folded into kept ones that did not go back to the queue:
/// each change gets its own entry in its record's history (an echo queued behind an update
/// would otherwise leave no trace), ignored as a write of its own since the kept write carried
/// its values.
pub fn folded_outcomes<'a>(
    folded: &'a HashMap<String, Vec<Pending>>,
    sent_back: &[String],
) -> Vec<(&'a WriteCommand, LedgerUpdate)> {
    (folded.iter())
        .filter(|(kept, _)| !sent_back.contains(kept))
        .flat_map(|(_, older)| older.iter())
        .map(|p| {
            let update = LedgerUpdate::Ignored {
                reason: FOLDED.to_string(),
            };
            (&p.command, update)
        })
        .collect()
}

/// One write per target record. Sending each would cost a call slot and risk their order; the
/// newest wins, yet an older write's effect survives in it: a record created and then updated
/// in one batch is created with the update's values (an update-only write alone would find
/// nothing to update, and the creation would be lost).
pub fn newest_per_record(batch: Vec<Pending>) -> Folded {
    let mut by_record: HashMap<(System, String, LedgerKey), Vec<Pending>> = HashMap::new();
    for pending in batch {
        let (system, job, key) = pending.command.record_identity();
        let identity = (system, job.to_string(), key.clone());
        by_record.entry(identity).or_default().push(pending);
    }
    let mut out = Folded::default();
    for (_, mut writes) in by_record {
        writes.sort_by_key(|p| p.command.source_changed_at_ms);
        let Some(mut kept) = writes.pop() else {
            continue;
        };
        out.superseded += writes.len();
        for older in writes.iter().rev() {
            kept.command = fold(older.command.clone(), kept.command);
        }
        if !writes.is_empty() {
            out.folded.insert(kept.message_id.clone(), writes);
        }
        out.kept.push(kept);
    }
    out.kept.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    out
}

/// `newer` written after `older`, as one write: the newer values over the older ones, and the
/// older mode when the newer one only updates (what the older one would create, the pair still
/// creates).
pub fn fold(mut older: WriteCommand, mut newer: WriteCommand) -> WriteCommand {
    if newer.mode == WriteMode::Update && older.mode != WriteMode::Update {
        newer.mode = older.mode;
    }
    if older.source == newer.source {
        // A field the newer snapshot found unchanged was set back to its last synced value:
        // the older change of it is superseded, not written.
        for (state_key, kept) in &newer.unchanged {
            older.fields.remove(&kept.target_field);
            older.field_states.remove(state_key);
            older.conflicts.remove(state_key);
        }
    }
    let mut unchanged = older.unchanged;
    unchanged.extend(std::mem::take(&mut newer.unchanged));
    let mut fields = older.fields;
    fields.extend(std::mem::take(&mut newer.fields));
    newer.fields = fields;
    let mut states = older.field_states;
    states.extend(std::mem::take(&mut newer.field_states));
    newer.field_states = states;
    let mut conflicts = older.conflicts;
    conflicts.extend(std::mem::take(&mut newer.conflicts));
    newer.conflicts = conflicts;
    newer.writeback = newer.writeback.or(older.writeback);
    newer.salesforce_id = newer.salesforce_id.or(older.salesforce_id);
    for attachment in older.attachments {
        if !newer.attachments.contains(&attachment) {
            newer.attachments.push(attachment);
        }
    }
    unchanged.retain(|state_key, _| !newer.field_states.contains_key(state_key));
    newer.unchanged = unchanged;
    newer
}

/// Each write with the fields its mapping found unchanged written after all where the ledger,
/// read under the record's lease, now shows an older change of the same side landed since: that
/// change was in flight when this one was mapped, and this newer snapshot's value must be the
/// last written.
pub fn recheck_unchanged(batch: Vec<Pending>, ledgers: &LedgerBatch) -> Vec<Pending> {
    batch
        .into_iter()
        .map(|mut p| {
            let cmd = &mut p.command;
            let Some(record) = ledgers.get(&cmd.job, &cmd.ledger_key) else {
                return p;
            };
            let source = cmd.source;
            let landed: Vec<String> = cmd
                .unchanged
                .iter()
                .filter(|(state_key, kept)| {
                    record.fields.get(*state_key).is_some_and(|now| {
                        now.from == source
                            && now.changed_at_ms < cmd.source_changed_at_ms
                            && now.hash_in(source) != kept.state.hash_in(source)
                    })
                })
                .map(|(state_key, _)| state_key.clone())
                .collect();
            for state_key in landed {
                if let Some(kept) = cmd.unchanged.remove(&state_key) {
                    cmd.fields.insert(kept.target_field, kept.value);
                    cmd.field_states.insert(state_key, kept.state);
                }
            }
            p
        })
        .collect()
}

/// Each write with what its pair's ledger parked for the same system folded in, older under
/// newer: an update that found no twin (the twin's creation was still on its way) goes along
/// with the next write there, so the creation, landing later, does not undo it.
pub fn unpark(batch: Vec<Pending>, ledgers: &LedgerBatch) -> Vec<Pending> {
    batch
        .into_iter()
        .map(|mut p| {
            let cmd = &p.command;
            let parked = ledgers
                .get(&cmd.job, &cmd.ledger_key)
                .and_then(|r| r.parked.get(&cmd.target))
                .cloned();
            if let Some(parked) = parked {
                let cmd = p.command;
                p.command = if parked.source_changed_at_ms > cmd.source_changed_at_ms {
                    let key = cmd.key.clone();
                    let mut folded = fold(cmd, parked);
                    // Addressed as the write of this batch was (it may know the record better).
                    folded.key = key;
                    folded
                } else {
                    fold(parked, cmd)
                };
            }
            p
        })
        .collect()
}

/// Splits off the writes left with no field to write and no file to upload: a newer change set
/// every field of an older one back (folded together, or parked), or a change found nothing
/// changed while an earlier one of the same side was on its way and that one has not landed.
/// They are settled as synced without a call, so the ledger takes their change as the last one
/// written from its side and the older write, arriving after, is stale.
pub fn nothing_to_write(batch: Vec<Pending>) -> (Vec<Pending>, Vec<(Pending, WriteOutcome)>) {
    let (empty, rest): (Vec<Pending>, Vec<Pending>) = batch
        .into_iter()
        .partition(|p| p.command.fields.is_empty() && p.command.attachments.is_empty());
    let settled = empty
        .into_iter()
        .map(|p| (p, WriteOutcome::Synced { target_id: None }))
        .collect();
    (rest, settled)
}

/// The commands of a batch after the ledger was read.
#[derive(Debug, Default, PartialEq)]
pub struct Fresh {
    /// To write.
    pub fresh: Vec<Pending>,
    /// Older than a change of the same source already written (a concurrent invocation got
    /// there first): dropped.
    pub stale: Vec<Pending>,
    /// Their job's ledger could not be read: sent back to the queue.
    pub unreadable: Vec<Pending>,
}

/// Sorts commands by what the ledger says was already written.
pub fn drop_stale(batch: Vec<Pending>, ledgers: &LedgerBatch) -> Fresh {
    let mut out = Fresh::default();
    for pending in batch {
        let cmd = &pending.command;
        if ledgers.is_unreadable(&cmd.job) {
            out.unreadable.push(pending);
            continue;
        }
        let record = ledgers.get(&cmd.job, &cmd.ledger_key);
        let written = record.and_then(|r| r.changed_at(cmd.source));
        match written {
            Some(newer) if newer > cmd.source_changed_at_ms => out.stale.push(pending),
            Some(same) if same == cmd.source_changed_at_ms && already_written(record, cmd) => {
                out.stale.push(pending)
            }
            _ => out.fresh.push(pending),
        }
    }
    out
}

/// Whether the ledger already holds every value `cmd` writes, as `cmd` would leave them: the
/// same change delivered twice (a change event relayed again) and mapped before the first
/// write was recorded.
fn already_written(record: Option<&super::LedgerRecord>, cmd: &WriteCommand) -> bool {
    let Some(record) = record else {
        return false;
    };
    // A command that says nothing of its values (none mapped) is written again: idempotent.
    cmd.attachments.is_empty()
        && !cmd.field_states.is_empty()
        && cmd.field_states.iter().all(|(field, state)| {
            record.fields.get(field).is_some_and(|held| {
                (held.gainsight, held.salesforce) == (state.gainsight, state.salesforce)
            })
        })
}

/// What one record's write outcome makes of the ledger.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEffect {
    /// The key to record under: a Salesforce-only pair whose Gainsight twin was just created
    /// moves to the new GSID.
    pub key: LedgerKey,
    pub update: LedgerUpdate,
    /// The Salesforce-only key that now forwards to the record: the key a Salesforce-born pair
    /// moved from to its GSID (its placeholder, if the ledger held one, is deleted), or the new
    /// Salesforce twin of a Gainsight record. A forwarding note is left under it, for writes
    /// still keyed by it and for change events, which name only the Salesforce Id.
    pub moved_from: Option<LedgerKey>,
    /// What the batch read of the record under `key` (absent, or its version).
    pub prior: Prior,
    /// The twin's id to write into the source record.
    pub writeback: Option<SideWrite>,
    /// The message goes back to the queue (a transient per-record failure).
    pub retry: bool,
}

/// The ledger update, key move and writeback that follow `outcome` of `cmd` (of `job`), as
/// acknowledged at `now_ms`, given what the batch read of the ledger (`ledgers`).
pub fn ledger_effect(
    job: &Job,
    cmd: &WriteCommand,
    outcome: WriteOutcome,
    ledgers: &LedgerBatch,
    now_ms: i64,
) -> LedgerEffect {
    let mut effect = LedgerEffect {
        key: cmd.ledger_key.clone(),
        update: LedgerUpdate::Ignored {
            reason: String::new(),
        },
        moved_from: None,
        prior: Prior::Absent,
        writeback: None,
        retry: false,
    };
    match outcome {
        WriteOutcome::Synced { target_id } => synced(job, cmd, target_id, now_ms, &mut effect),
        WriteOutcome::Ignored { reason } => effect.update = LedgerUpdate::Ignored { reason },
        WriteOutcome::Unmatched { reason } => {
            effect.update = LedgerUpdate::Parked {
                reason,
                write: Box::new(cmd.clone()),
            }
        }
        WriteOutcome::Failed { message, retryable } => {
            // Visible as error now and retried through the queue when transient: a later
            // success clears it, and if the retries run out the ledger already tells why.
            effect.retry = retryable;
            effect.update = LedgerUpdate::Failed { message };
        }
        WriteOutcome::Gone { message } => {
            effect.update = LedgerUpdate::Failed {
                message: twin_gone(cmd, &message),
            };
        }
    }
    effect.prior = Prior::of(ledgers.get(&job.name, &effect.key));
    effect
}

/// After `written` recorded a pair as synced, the effect that marks it error because something
/// that goes with the write (an attachment) did not go out: the pair stays linked with the
/// write's field states, and shows in the error status saying `message`. None when `written`
/// is not a sync (its own outcome already says what happened).
pub fn unfinished(written: &LedgerEffect, message: String) -> Option<LedgerEffect> {
    matches!(written.update, LedgerUpdate::Synced { .. }).then(|| LedgerEffect {
        key: written.key.clone(),
        update: LedgerUpdate::Failed { message },
        moved_from: None,
        // Written after `written`, whose version the batch did not read.
        prior: Prior::Unread,
        writeback: None,
        retry: false,
    })
}

/// What the ledger says of a pair whose twin in `cmd`'s target is gone: which record, the
/// target's own words, and how to relink or recreate it.
fn twin_gone(cmd: &WriteCommand, message: &str) -> String {
    let id = match &cmd.key {
        crate::domain::RecordKey::Id { value, .. }
        | crate::domain::RecordKey::ExternalId { value, .. } => value.as_str(),
    };
    format!(
        "the {} {} {id} of this pair no longer exists ({message}); to relink the pair to the record that replaced it (a merge), import the pair (syncctl import); to create a new twin, clear the source record's link to {id} and resync it (syncctl resync --job {} --ids <its id>)",
        cmd.target.label(),
        cmd.object,
        cmd.job,
    )
}

fn synced(
    job: &Job,
    cmd: &WriteCommand,
    target_id: Option<String>,
    now_ms: i64,
    effect: &mut LedgerEffect,
) {
    if let (System::Gainsight, Some(gsid), Some(_)) =
        (cmd.target, &target_id, cmd.ledger_key.salesforce_only_id())
    {
        effect.moved_from = Some(cmd.ledger_key.clone());
        effect.key = LedgerKey::Gainsight(gsid.clone());
    }
    // A Gainsight record's new Salesforce twin: its Id forwards to the pair from now on.
    if let (System::Salesforce, None, Some(twin), Some(_)) = (
        cmd.target,
        &cmd.salesforce_id,
        &target_id,
        cmd.ledger_key.gainsight_id(),
    ) {
        effect.moved_from = Some(LedgerKey::SalesforceOnly(twin.clone()));
    }
    if let (Some(wb), Some(twin)) = (&cmd.writeback, &target_id) {
        effect.writeback = writeback(job, cmd, wb, &effect.key, twin);
    }
    let mut fields = cmd.field_states.clone();
    for state in fields.values_mut() {
        state.synced_at_ms = now_ms;
    }
    let salesforce_id = match cmd.target {
        System::Salesforce => target_id.or_else(|| cmd.salesforce_id.clone()),
        System::Gainsight => cmd.salesforce_id.clone(),
    };
    effect.update = LedgerUpdate::Synced {
        salesforce_id,
        source: cmd.source,
        source_changed_at_ms: cmd.source_changed_at_ms,
        fields,
    };
}

/// A record that just got its twin learns the twin's id: a Salesforce record its GSID, a
/// Gainsight record its Salesforce Id. Without the source record's own id there is nothing to
/// address, and a later change still finds the pair through the ledger.
fn writeback(
    job: &Job,
    cmd: &WriteCommand,
    wb: &Writeback,
    key: &LedgerKey,
    twin: &str,
) -> Option<SideWrite> {
    let id = match wb.system {
        System::Salesforce => cmd.salesforce_id.as_deref(),
        System::Gainsight => key.gainsight_id(),
    }?;
    let id_field = job.id_field_in(wb.system);
    Some(SideWrite::new(
        (&cmd.job, key),
        (wb.system, &wb.object),
        (id_field, id),
        (&wb.field, twin.into()),
    ))
}

#[cfg(test)]
mod tests;
