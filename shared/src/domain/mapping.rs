//! The mapping engine: applies a job to a change and decides write, ignore or reject. It carries
//! direct mappings by data flow, fills derived (lookup) fields from batched lookup results,
//! honours event actions, checks values against the target schema, suppresses echoes of our own
//! writes by per-field hashes kept in the ledger, and resolves conflicts by each field's rule.
//!
//! `Mapper::map` runs in stages, each of which may end the mapping early with an outcome: the
//! event-action gate, the identifier-only and staleness gates, direct fields, derived fields, the
//! identifiers carried along, the target key, the writeback, and the commands.

mod draft;
mod lookups;
mod timeline;

use serde_json::Value;

use super::schema::{convert, normalize_source, Schemas};
use super::waiting::ParentRef;
use super::{
    ChangeEvent, ChangeOrigin, FieldState, InSync, Job, LedgerKey, LedgerRecord, OnCreated,
    OnUpdated, Operation, Presence, PresenceState, RecordKey, System, WriteCommand, WriteMode,
    Writeback,
};
use draft::Draft;
pub use lookups::{LookupRequest, Lookups};

/// What the mapper decided for one change and job.
#[derive(Clone, Debug, PartialEq)]
pub enum MapOutcome {
    /// The write to the other system, and when a conflict was won by a side whose value our
    /// earlier write had overwritten, a second write restoring it there.
    Write(Vec<WriteCommand>),
    /// Nothing to do, on purpose (echo, delete, do-nothing action, stale); logged with the reason.
    Ignored {
        key: Option<LedgerKey>,
        reason: String,
    },
    /// Nothing to do because every mapped value is as last synced on a synced pair: ignored,
    /// and noted so that an older change from the same side still on its way is not written
    /// after it (see `LedgerUpdate::InSync`).
    InSync {
        key: LedgerKey,
        reason: String,
        seen: InSync,
    },
    /// The source's record was deleted, merged away or restored: recorded on the pair as that
    /// side's presence, not propagated.
    Presence {
        key: Option<LedgerKey>,
        reason: String,
        side: System,
        presence: Presence,
    },
    /// The change cannot be synced as it is (type check, lookup); marked error with the reason.
    Rejected {
        key: Option<LedgerKey>,
        reason: String,
    },
    /// Something it depends on failed for now (a lookup query): the message is retried.
    Retry { reason: String },
    /// A lookup found no record where the job rejects a record without one. The record it looks
    /// for may still be on its way (a Case on a Company whose Account is being created), so the
    /// mapper parks the change under that parent until it syncs (`domain::waiting`); a change with
    /// no ledger key to park under is tried again while the queue delivers it and rejected on
    /// its last delivery.
    Unresolved {
        key: Option<LedgerKey>,
        parent: ParentRef,
        reason: String,
    },
}

impl MapOutcome {
    /// What an unresolved lookup comes to on the message's last delivery: rejected, saying so.
    pub fn rejected_at_last(self, deliveries: u32) -> Self {
        match self {
            MapOutcome::Unresolved { key, reason, .. } => MapOutcome::Rejected {
                key,
                reason: format!(
                    "{reason} (tried on {deliveries} deliveries; once that record has synced, resync this one)"
                ),
            },
            other => other,
        }
    }
}

/// Whether a draft is worth a write.
enum Worth {
    /// Some mapped value changed.
    Changes,
    /// None did, but the write of an earlier change from the same side is on its way: the
    /// unchanged values go as a snapshot, or `otherwise` when they cannot.
    Snapshot { otherwise: Box<MapOutcome> },
}

/// Stateless mapping engine over one job; `schemas` (the cached describes) enable value checks.
pub struct Mapper<'a> {
    job: &'a Job,
    schemas: Option<&'a Schemas>,
}

/// The ids a change tells about its record pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairIds {
    pub gainsight_id: Option<String>,
    pub salesforce_id: Option<String>,
}

impl PairIds {
    /// The ledger key: the GSID, or the Salesforce id while the pair has none.
    pub fn ledger_key(&self) -> Option<LedgerKey> {
        LedgerKey::of(self.gainsight_id.as_deref(), self.salesforce_id.as_deref())
    }
}

/// The change being mapped, with what the stages share about it.
struct Context<'c> {
    change: &'c ChangeEvent,
    ledger: Option<&'c LedgerRecord>,
    ids: PairIds,
    key: Option<LedgerKey>,
    /// An operator's resync rewrites on purpose, even when the values look unchanged.
    forced: bool,
}

impl Context<'_> {
    fn source(&self) -> System {
        self.change.source
    }

    fn target(&self) -> System {
        self.change.source.other()
    }

    fn ignored(&self, reason: String) -> MapOutcome {
        MapOutcome::Ignored {
            key: self.key.clone(),
            reason,
        }
    }

    fn unresolved(&self, parent: ParentRef, reason: String) -> MapOutcome {
        MapOutcome::Unresolved {
            key: self.key.clone(),
            parent,
            reason,
        }
    }

    /// The source's record became `state` (deleted, merged away, restored), unless the pair
    /// already records a later such change of it: events of one record may come out of order.
    fn presence(&self, reason: String, state: PresenceState) -> MapOutcome {
        let (side, at_ms) = (self.source(), self.change.occurred_at_ms);
        let recorded = self.ledger.and_then(|l| l.presence.get(&side));
        if let Some(later) = recorded.filter(|p| p.at_ms > at_ms) {
            return self.ignored(format!(
                "{reason}; stale: the record was {} since",
                later.describe()
            ));
        }
        MapOutcome::Presence {
            key: self.key.clone(),
            reason,
            side,
            presence: Presence {
                state,
                at_ms,
                by: self.change.changed_by.clone(),
            },
        }
    }

    fn rejected(&self, reason: String) -> MapOutcome {
        MapOutcome::Rejected {
            key: self.key.clone(),
            reason,
        }
    }

    /// What the ledger last recorded for the field kept under `state_key`.
    fn previous(&self, state_key: &str) -> Option<&FieldState> {
        self.ledger.and_then(|l| l.fields.get(state_key))
    }
}

/// A stage either passes its result on or ends the mapping with an outcome.
type Stage<T> = Result<T, MapOutcome>;

impl<'a> Mapper<'a> {
    pub fn new(job: &'a Job, schemas: Option<&'a Schemas>) -> Self {
        Self { job, schemas }
    }

    /// The pair's ids as far as the change itself says.
    pub fn pair_ids(&self, change: &ChangeEvent) -> PairIds {
        let job = self.job;
        let field_text = |field: Option<&str>| field.and_then(|f| text(change.fields.get(f)));
        match change.source {
            System::Gainsight => PairIds {
                gainsight_id: Some(change.record_id.clone()),
                salesforce_id: field_text(job.sfid_gainsight_field()),
            },
            System::Salesforce => PairIds {
                gainsight_id: field_text(job.gsid_external_field()),
                salesforce_id: Some(change.record_id.clone()),
            },
        }
    }

    /// The ledger key of the change's pair, if it has one.
    pub fn ledger_key(&self, change: &ChangeEvent) -> Option<LedgerKey> {
        self.pair_ids(change).ledger_key()
    }

    /// Value of a source field, the record's own id included.
    fn source_value(&self, change: &ChangeEvent, field: &str) -> Option<Value> {
        if field == self.job.id_field_in(change.source) {
            return Some(Value::String(change.record_id.clone()));
        }
        let raw = change.fields.get(field)?;
        let schema = self
            .schemas
            .and_then(|s| s.get(change.source, self.job.object_in(change.source)))
            .and_then(|o| o.field(field));
        Some(normalize_source(raw, schema))
    }

    /// The derived mappings towards the other system this change needs looked up, with their
    /// match tuples. A tuple with an empty value needs no lookup (it clears the reference).
    pub fn lookup_tuples(&self, change: &ChangeEvent) -> Vec<(usize, Vec<String>)> {
        let target = change.source.other();
        self.job
            .derived
            .iter()
            .enumerate()
            .filter(|(_, d)| d.target == target)
            .filter_map(|(i, d)| {
                let tuple: Option<Vec<String>> = d
                    .lookup
                    .matches
                    .iter()
                    .map(|m| text(self.source_value(change, &m.source).as_ref()))
                    .collect();
                tuple.map(|t| (i, t))
            })
            .collect()
    }

    /// Maps `change` (from the job's source object) given the pair's ledger record, if any, and
    /// the batch's lookup results.
    pub fn map(
        &self,
        change: &ChangeEvent,
        ledger: Option<&LedgerRecord>,
        lookups: &Lookups,
    ) -> MapOutcome {
        let ids = self.known_ids(change, ledger);
        let cx = Context {
            change,
            ledger,
            key: ids.ledger_key(),
            ids,
            // The master of a merge takes over a pair whose values may already match: its id is
            // what changes.
            forced: change.origin == ChangeOrigin::Resync || takes_over(change),
        };
        match self.stages(&cx, lookups) {
            Ok(commands) => MapOutcome::Write(commands),
            Err(outcome) => outcome,
        }
    }

    fn stages(&self, cx: &Context, lookups: &Lookups) -> Stage<Vec<WriteCommand>> {
        let mode = self.write_mode(cx)?;
        self.activity_type_gate(cx)?;
        self.identifier_only_gate(cx)?;
        self.staleness_gate(cx)?;
        let mut draft = Draft::default();
        self.direct_fields(cx, &mut draft);
        self.derived_fields(cx, lookups, &mut draft)?;
        // New attachments of an activity are worth a write on their own.
        let extras = self.activity_extras(cx)?;
        let worth = if extras.is_empty() {
            self.worth_writing(cx, &draft)?
        } else {
            self.values_valid(cx, &draft)?;
            Worth::Changes
        };
        if let Worth::Snapshot { otherwise } = worth {
            // Nothing changed, but an earlier change is on its way: this snapshot goes too.
            return self
                .commands(cx, draft, mode)
                .map(unchanged_snapshot)
                .map_err(|_| *otherwise);
        }
        let mut commands = self.commands(cx, draft, mode)?;
        extras.attach_to(&mut commands[0]);
        Ok(commands)
    }

    /// The draft as write commands: activity fields, identifiers, the target record's key.
    fn commands(
        &self,
        cx: &Context,
        mut draft: Draft,
        mode: WriteMode,
    ) -> Stage<Vec<WriteCommand>> {
        self.activity_fields(cx, &mut draft)?;
        self.carry_identifiers(cx, &mut draft)?;
        let record_key = self.target_key(cx.target(), &cx.ids, &draft.fields);
        let record_key = record_key.map_err(|reason| cx.rejected(reason))?;
        if let RecordKey::ExternalId { field, value } = &record_key {
            draft
                .fields
                .insert(field.clone(), Value::String(value.clone()));
        }
        let Some(ledger_key) = cx.key.clone() else {
            return Err(cx.rejected(format!(
                "{} {} carries no id to record it by",
                cx.change.object, cx.change.record_id
            )));
        };
        let writeback = self.writeback(cx);
        Ok(draft.into_commands(self.job, cx, ledger_key, record_key, mode, writeback))
    }

    /// The change's ids, completed from the ledger (a linked pair's GSID, a known Salesforce Id).
    fn known_ids(&self, change: &ChangeEvent, ledger: Option<&LedgerRecord>) -> PairIds {
        let mut ids = self.pair_ids(change);
        if let Some(l) = ledger {
            if ids.gainsight_id.is_none() {
                ids.gainsight_id = l.key.gainsight_id().map(str::to_string);
            }
            if ids.salesforce_id.is_none() {
                ids.salesforce_id = l.salesforce_id.clone();
            }
        }
        ids
    }

    /// Event-action gate: what the job does for this kind of change from this source.
    fn write_mode(&self, cx: &Context) -> Stage<WriteMode> {
        let (job, source) = (self.job, cx.source());
        let actions = job.events.from(source);
        let operation = effective_operation(cx);
        let nothing = |kind: &str| {
            cx.ignored(format!(
                "job {} does nothing for records {kind} in {}",
                job.name,
                source.as_str()
            ))
        };
        match (operation, actions.on_created, actions.on_updated) {
            (Operation::Deleted, _, _) => Err(self.deleted(cx)),
            (Operation::Restored, _, _) => Err(cx.presence(
                super::merge::restore_note(cx.change),
                PresenceState::Restored,
            )),
            (Operation::Created, OnCreated::DoNothing, _) => Err(nothing("created")),
            (Operation::Updated, _, OnUpdated::DoNothing) => Err(nothing("updated")),
            (Operation::Created, OnCreated::Create, _) => Ok(WriteMode::Create),
            (Operation::Created, OnCreated::CreateAndUpdate, _) => Ok(WriteMode::Upsert),
            (Operation::Updated, _, OnUpdated::Update) => Ok(WriteMode::Update),
        }
    }

    /// A change that says only identifiers changed triggers no write.
    fn identifier_only_gate(&self, cx: &Context) -> Stage<()> {
        match &cx.change.changed_fields {
            Some(changed) if !changed.is_empty() => self.not_only_identifiers(cx, changed),
            _ => Ok(()),
        }
    }

    fn not_only_identifiers(&self, cx: &Context, changed: &[String]) -> Stage<()> {
        if changed
            .iter()
            .all(|f| self.job.is_identifier(cx.source(), f))
        {
            return Err(cx.ignored(format!(
                "only identifiers changed ({}); identifier changes alone do not trigger a write",
                changed.join(", ")
            )));
        }
        Ok(())
    }

    /// A change older than one already written from the same source is stale (each system's
    /// clock is compared only with itself).
    fn staleness_gate(&self, cx: &Context) -> Stage<()> {
        let source = cx.source();
        match cx.ledger.and_then(|l| l.changed_at(source)) {
            Some(previous) if previous > cx.change.occurred_at_ms => Err(cx.ignored(format!(
                "stale: a change from {} made at {} was already written; this one is from {}",
                source.as_str(),
                crate::time::rfc3339(previous),
                crate::time::rfc3339(cx.change.occurred_at_ms)
            ))),
            _ => Ok(()),
        }
    }

    /// Nothing left to write (echo, no change, lost conflicts) or a value that fails its checks
    /// ends the mapping here. A change whose every value is as last synced on a synced record is
    /// `InSync`, or a snapshot to write when the write of an earlier change from the same side
    /// is still on its way (landing after it, that one would set the values back).
    fn worth_writing(&self, cx: &Context, draft: &Draft) -> Stage<Worth> {
        self.values_valid(cx, draft)?;
        if !draft.fields.is_empty() {
            return self
                .not_only_identifiers(cx, &draft.changed)
                .map(|()| Worth::Changes);
        }
        let mut reason = if draft.notes.is_empty() {
            format!(
                "no mapped field changed: every value from {} equals what was last synced (echo of our own write, or no change)",
                cx.source().as_str()
            )
        } else {
            String::new()
        };
        reason.push_str(&draft.notes.join("; "));
        // Only a pair that has synced: its twin exists and holds the values last synced.
        let synced = cx.ledger.filter(|l| l.synced);
        let (Some(ledger), Some(key), true, false) = (
            synced,
            &cx.key,
            draft.notes.is_empty(),
            draft.unchanged.is_empty(),
        ) else {
            return Err(cx.ignored(reason));
        };
        let (source, at_ms) = (cx.source(), cx.change.occurred_at_ms);
        let in_sync = MapOutcome::InSync {
            key: key.clone(),
            reason,
            seen: InSync {
                source,
                changed_at_ms: at_ms,
                mapped_at: ledger.mapped_at.get(&source).copied(),
            },
        };
        match ledger.in_flight_before(source, at_ms) {
            true => Ok(Worth::Snapshot {
                otherwise: Box::new(in_sync),
            }),
            false => Err(in_sync),
        }
    }

    /// A value that fails its checks rejects the change.
    fn values_valid(&self, cx: &Context, draft: &Draft) -> Stage<()> {
        if draft.errors.is_empty() {
            return Ok(());
        }
        Err(cx.rejected(format!(
            "data type validation failed: {}",
            draft.errors.join("; ")
        )))
    }

    /// Identifiers and required fields go along with every write, so the pair stays linked.
    fn carry_identifiers(&self, cx: &Context, draft: &mut Draft) -> Stage<()> {
        let (job, source, target) = (self.job, cx.source(), cx.target());
        for pair in job.identifiers.iter().chain(&job.required) {
            let target_field = pair.field_in(target);
            if target_field == job.id_field_in(target) || draft.fields.contains_key(target_field) {
                continue;
            }
            let Some(value) = self.source_value(cx.change, pair.field_in(source)) else {
                continue;
            };
            let converted = self
                .convert_for(target, target_field, &value)
                .map_err(|e| cx.rejected(format!("data type validation failed: {e}")))?;
            if !converted.is_null() {
                draft.fields.insert(target_field.to_string(), converted);
            }
        }
        Ok(())
    }

    /// What a delete is recorded as (which record, where, by whom, when, and a merge's outcome
    /// for the pairs): the side's presence, since deletes are not propagated; ignored when the
    /// pair moved to the merge's master; rejected when a merge needs an operator.
    fn deleted(&self, cx: &Context) -> MapOutcome {
        let pair = cx.key.as_ref().and_then(LedgerKey::gainsight_id);
        let note = match super::merge::delete_note(cx.change, pair) {
            Ok(note) => note,
            Err(attention) => return cx.rejected(attention),
        };
        match super::merge::left_behind(cx.change, pair) {
            Some(state) => cx.presence(note, state),
            // The pair moved on to the master, which is there.
            None => cx.ignored(note),
        }
    }

    /// A pair seen for the first time from one side: that side learns the other's id (the
    /// Account its GSID, the Company its Salesforce Id), as Gainsight's connector keeps them.
    fn writeback(&self, cx: &Context) -> Option<Writeback> {
        let job = self.job;
        let gsid = cx
            .ids
            .gainsight_id
            .as_ref()
            .filter(|_| !takes_over(cx.change));
        match (cx.target(), gsid, &cx.ids.salesforce_id) {
            (System::Gainsight, None, _) => job.gsid_external_field().map(|field| Writeback {
                system: System::Salesforce,
                object: job.salesforce.object.clone(),
                field: field.to_string(),
            }),
            (System::Salesforce, _, None) => job.sfid_gainsight_field().map(|field| Writeback {
                system: System::Gainsight,
                object: job.gainsight.object.clone(),
                field: field.to_string(),
            }),
            _ => None,
        }
    }

    /// `value` converted and checked for `field` of the job's object in `target`, as described
    /// (unchecked without describes); the error names `Object.Field`.
    fn convert_for(&self, target: System, field: &str, value: &Value) -> Result<Value, String> {
        let object = self.job.object_in(target);
        match self
            .schemas
            .and_then(|s| s.get(target, object))
            .and_then(|o| o.field(field))
        {
            Some(f) => convert(value, f, target).map_err(|e| format!("{object}.{e}")),
            None => Ok(value.clone()),
        }
    }

    /// How the target record is found, in the order the job lists its identifiers.
    fn target_key(
        &self,
        target: System,
        ids: &PairIds,
        fields: &super::Fields,
    ) -> Result<RecordKey, String> {
        match target {
            System::Salesforce => self.salesforce_key(ids),
            System::Gainsight => self.gainsight_key(ids, fields),
        }
    }

    fn salesforce_key(&self, ids: &PairIds) -> Result<RecordKey, String> {
        let job = self.job;
        // A record whose Salesforce Id is known (the ledger links the pair, an operator imported
        // it, or the source carries it) is written by that Id whatever the mode: an upsert on the
        // external id would create a second record when the existing one does not carry the GSID
        // yet. The GSID travels in the fields, so the record learns it.
        if let Some(id) = &ids.salesforce_id {
            return Ok(RecordKey::Id { value: id.clone() });
        }
        match (job.gsid_external_field(), &ids.gainsight_id) {
            (Some(field), Some(gsid)) => Ok(RecordKey::ExternalId {
                field: field.to_string(),
                value: gsid.clone(),
            }),
            _ => Err(format!(
                "no identifier of job {} has a value to match a Salesforce {}",
                job.name, job.salesforce.object
            )),
        }
    }

    fn gainsight_key(&self, ids: &PairIds, fields: &super::Fields) -> Result<RecordKey, String> {
        let job = self.job;
        if let Some(gsid) = &ids.gainsight_id {
            return Ok(RecordKey::Id {
                value: gsid.clone(),
            });
        }
        for pair in &job.identifiers {
            if pair.gainsight == job.gainsight.id_field {
                continue;
            }
            let value = if pair.salesforce == job.salesforce.id_field {
                ids.salesforce_id.clone()
            } else {
                text(fields.get(&pair.gainsight))
            };
            if let Some(value) = value {
                return Ok(RecordKey::ExternalId {
                    field: pair.gainsight.clone(),
                    value,
                });
            }
        }
        Err(format!(
            "no identifier of job {} has a value to match a Gainsight {}",
            job.name, job.gainsight.object
        ))
    }
}

/// Whether `change` is the master of a merge taking over the losing record's pair.
fn takes_over(change: &ChangeEvent) -> bool {
    matches!(change.merge, Some(super::merge::Merge::TakesOver { .. }))
}

/// The operation the event actions apply to. An update of a record whose create never
/// succeeded (the ledger has only failures for it) is handled as a create, so correcting the data
/// at the source creates the twin by itself; so is a record never synced that an operator's resync
/// or a poll (a schedule or a backfill) reads, which the other side does not have yet: a poll
/// cannot tell a create from an edit, and an update-only write would never create it.
fn effective_operation(cx: &Context) -> Operation {
    let never_synced = cx.ledger.is_none_or(|l| !l.synced);
    let create_failed = cx.ledger.is_some_and(|l| !l.synced && l.error);
    // A record read back from its source is a snapshot, as a poll reads one: never synced, it
    // follows the create action even when it was edited since its creation.
    let read_back = cx.change.read == super::change::Reading::Done;
    let read_not_pushed = cx.forced || cx.change.origin == ChangeOrigin::Poller || read_back;
    match cx.change.operation {
        Operation::Updated if create_failed || (read_not_pushed && never_synced) => {
            Operation::Created
        }
        other => other,
    }
}

/// The write of a change that found every value as last synced while an earlier change of the
/// same side was on its way: no field to write, every field carried as unchanged, so the
/// pusher writes this newer snapshot's values if that earlier write lands first, and drops that
/// write's values if it comes after.
fn unchanged_snapshot(mut commands: Vec<WriteCommand>) -> Vec<WriteCommand> {
    commands.truncate(1);
    for cmd in &mut commands {
        cmd.fields.clear();
        cmd.field_states.clear();
        cmd.conflicts.clear();
    }
    commands
}

fn unchanged(previous: Option<&FieldState>, source: System, hash: u64, value: &Value) -> bool {
    match previous {
        Some(p) => p.hash_in(source) == hash,
        // Never synced: an empty value has nothing to tell the other side.
        None => value.is_null(),
    }
}

fn state(source: System, source_value: &Value, target_value: &Value, at: i64) -> FieldState {
    let (gainsight, salesforce) = match source {
        System::Gainsight => (hash(source_value), hash(target_value)),
        System::Salesforce => (hash(target_value), hash(source_value)),
    };
    FieldState {
        gainsight,
        salesforce,
        from: source,
        changed_at_ms: at,
        synced_at_ms: 0,
    }
}

fn conditions(derived: &super::DerivedMapping, tuple: &[String]) -> String {
    derived
        .lookup
        .matches
        .iter()
        .zip(tuple)
        .map(|(m, v)| format!("{} = {v:?}", m.field))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Hash of one value: FNV-1a 64 of its JSON. It only has to tell successive values of one field
/// apart (not resist an adversary), its algorithm is fixed by its spec so ledgers stay valid
/// across releases, and it is cheap enough for the mapping throughput target.
pub fn hash(value: &Value) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    // Numbers that are equal as f64 hash equal (Salesforce answers 1200 for 1200.0).
    match value {
        Value::Number(n) => hasher.write(&n.as_f64().unwrap_or_default().to_bits().to_be_bytes()),
        Value::String(s) => {
            hasher.write(b"s");
            hasher.write(s.as_bytes());
        }
        other => {
            let _ = serde_json::to_writer(HashWriter(&mut hasher), other);
        }
    }
    hasher.finish()
}

struct HashWriter<'a>(&'a mut fnv::FnvHasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::hash::Hasher::write(self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A value as match text: non-empty strings and numbers; anything else is no value.
pub fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
