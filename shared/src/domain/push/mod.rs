//! The pusher's rules, as pure functions over a batch of write commands: which commands are
//! written (the newest per target record, none older than a change already written), how
//! conflicts the mapper could not see are settled (`conflicts`), how each group is split into
//! calls (`plan`), and what a write's outcome makes of the ledger and of the source record.

mod conflicts;
mod plan;

use std::collections::HashMap;

use super::{
    Fields, Job, LedgerBatch, LedgerKey, LedgerUpdate, Prior, RecordKey, System, WriteCommand,
    Writeback,
};
pub use conflicts::{settle_conflicts, Settlement};
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
    /// Nothing written, on purpose (lost conflict, update-only job without a match).
    Ignored { reason: String },
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
/// twin's id learnt, or a value restored after its side won a conflict).
#[derive(Clone, Debug, PartialEq)]
pub struct SideWrite {
    pub system: System,
    pub object: String,
    /// The field the record is addressed by (`Id`, `Gsid`).
    pub id_field: String,
    pub fields: Fields,
}

impl SideWrite {
    /// `field = value` on the record whose `id_field` is `id`.
    pub fn new(
        system: System,
        object: &str,
        (id_field, id): (&str, &str),
        (field, value): (&str, serde_json::Value),
    ) -> Self {
        let mut fields = Fields::new();
        fields.insert(id_field.into(), id.into());
        fields.insert(field.into(), value);
        Self {
            system,
            object: object.to_string(),
            id_field: id_field.to_string(),
            fields,
        }
    }
}

/// Keeps only the newest command per target record: an older one in the same batch would be
/// overwritten anyway, and sending both costs a call slot and an ordering risk. Returns the
/// commands kept and how many were superseded.
pub fn newest_per_record(batch: Vec<Pending>) -> (Vec<Pending>, usize) {
    let mut newest: HashMap<(System, String, RecordKey), Pending> = HashMap::new();
    let mut superseded = 0;
    for pending in batch {
        let (system, object, key) = pending.command.record_identity();
        let identity = (system, object.to_string(), key.clone());
        match newest.get(&identity) {
            Some(kept)
                if kept.command.source_changed_at_ms > pending.command.source_changed_at_ms =>
            {
                superseded += 1
            }
            _ => {
                if newest.insert(identity, pending).is_some() {
                    superseded += 1;
                }
            }
        }
    }
    let mut kept: Vec<Pending> = newest.into_values().collect();
    kept.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    (kept, superseded)
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
        let written = ledgers
            .get(&cmd.job, &cmd.ledger_key)
            .and_then(|r| r.changed_at(cmd.source));
        match written {
            Some(newer) if newer > cmd.source_changed_at_ms => out.stale.push(pending),
            _ => out.fresh.push(pending),
        }
    }
    out
}

/// What one record's write outcome makes of the ledger.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEffect {
    /// The key to record under: a Salesforce-only pair whose Gainsight twin was just created
    /// moves to the new GSID.
    pub key: LedgerKey,
    pub update: LedgerUpdate,
    /// The placeholder to delete once the record moved to its GSID (only when the ledger holds
    /// one: a pair first seen from Salesforce and synced at once never stored it).
    pub forget: Option<LedgerKey>,
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
        forget: None,
        prior: Prior::Absent,
        writeback: None,
        retry: false,
    };
    match outcome {
        WriteOutcome::Synced { target_id } => synced(job, cmd, target_id, now_ms, &mut effect),
        WriteOutcome::Ignored { reason } => effect.update = LedgerUpdate::Ignored { reason },
        WriteOutcome::Failed { message, retryable } => {
            // Visible as error now and retried through the queue when transient: a later
            // success clears it, and if the retries run out the ledger already tells why.
            effect.retry = retryable;
            effect.update = LedgerUpdate::Failed { message };
        }
    }
    let stored = |key: &LedgerKey| ledgers.get(&job.name, key).is_some();
    effect.forget = effect.forget.take().filter(stored);
    effect.prior = Prior::of(ledgers.get(&job.name, &effect.key));
    effect
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
        effect.forget = Some(cmd.ledger_key.clone());
        effect.key = LedgerKey::Gainsight(gsid.clone());
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
        wb.system,
        &wb.object,
        (id_field, id),
        (&wb.field, twin.into()),
    ))
}

#[cfg(test)]
mod tests;
