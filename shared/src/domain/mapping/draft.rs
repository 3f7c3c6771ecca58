//! The write in progress: the field stages of the mapper (direct and derived fields, conflicts,
//! currency) fill a `Draft`, which becomes the write commands once every gate has passed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    conditions, hash, state, text, unchanged, Context, Lookups, MapOutcome, Mapper, Stage,
};
use crate::domain::schema::{convert, Money};
use crate::domain::waiting::ParentRef;
use crate::domain::{
    DataFlow, DerivedMapping, FieldConflict, FieldMapping, FieldState, Fields, Job, LedgerKey,
    OnMultipleMatches, OnNoMatch, RecordKey, System, Unchanged, WriteCommand, WriteMode, Writeback,
};

/// The field of a multi-currency Salesforce record that holds its amounts' currency.
const CURRENCY_ISO_CODE: &str = "CurrencyIsoCode";

/// What the field stages decided so far.
#[derive(Default)]
pub(super) struct Draft {
    /// Target values to write, by target field.
    pub fields: Fields,
    /// Ledger states of the fields written, by ledger field name.
    pub field_states: BTreeMap<String, FieldState>,
    /// Source values to write back to the source after it won a conflict it had lost there.
    pub restore: Fields,
    /// Bi-directional fields the pusher settles if the other side's change was in flight.
    pub conflicts: BTreeMap<String, FieldConflict>,
    /// Values that fail the target's checks, each naming `Object.Field`.
    pub errors: Vec<String>,
    /// Conflicts settled here, for the ledger's reason.
    pub notes: Vec<String>,
    /// Source fields whose change is written.
    pub changed: Vec<String>,
    /// Mapped fields found unchanged, by ledger field name, carried along unwritten.
    pub unchanged: BTreeMap<String, Unchanged>,
}

/// How a bi-directional field changed on both sides was settled here.
enum Verdict {
    /// No conflict: write as usual and let the pusher settle one it can still see.
    None,
    /// The source side wins and its value is restored there too.
    SourceWins,
    /// The target side keeps its value: nothing is written for the field.
    TargetWins,
}

impl Draft {
    /// The main write, plus a restoring write to the source when a conflict asked for one.
    pub fn into_commands(
        self,
        job: &Job,
        cx: &Context,
        ledger_key: LedgerKey,
        record_key: RecordKey,
        mode: WriteMode,
        writeback: Option<Writeback>,
    ) -> Vec<WriteCommand> {
        let (source, target) = (cx.source(), cx.target());
        let command =
            |target: System, key: RecordKey, mode: WriteMode, fields: Fields| WriteCommand {
                job: job.name.clone(),
                target,
                object: job.object_in(target).to_string(),
                key,
                mode,
                fields,
                ledger_key: ledger_key.clone(),
                salesforce_id: cx.ids.salesforce_id.clone(),
                field_states: self.field_states.clone(),
                writeback: None,
                source,
                conflicts: BTreeMap::new(),
                event_id: cx.change.event_id.clone(),
                source_changed_at_ms: cx.change.occurred_at_ms,
                received_at_ms: cx.change.received_at_ms,
                attachments: Vec::new(),
                skipped: Vec::new(),
                unchanged: Default::default(),
                load: None,
            };
        let mut main = command(target, record_key, mode, self.fields.clone());
        main.writeback = writeback;
        main.load = cx.change.load.clone();
        main.conflicts = self.conflicts.clone();
        main.unchanged = self.unchanged;
        let mut commands = vec![main];
        if !self.restore.is_empty() {
            let id = RecordKey::Id {
                value: cx.change.record_id.clone(),
            };
            commands.push(command(source, id, WriteMode::Update, self.restore));
        }
        commands
    }
}

impl Mapper<'_> {
    /// Direct mappings that flow from the change's source.
    pub(super) fn direct_fields(&self, cx: &Context, draft: &mut Draft) {
        let source = cx.source();
        for mapping in self
            .job
            .fields
            .iter()
            .filter(|m| m.flow.carries_from(source))
        {
            self.direct_field(cx, mapping, draft);
        }
    }

    fn direct_field(&self, cx: &Context, mapping: &FieldMapping, draft: &mut Draft) {
        let (source, target) = (cx.source(), cx.target());
        let source_field = mapping.field_in(source);
        let Some(value) = self.source_value(cx.change, source_field) else {
            return;
        };
        let target_field = mapping.field_in(target);
        let converted = match self.convert_for(target, target_field, &value) {
            Ok(v) => v,
            Err(e) => return draft.errors.push(e),
        };
        let state_key = &mapping.gainsight;
        let source_hash = hash(&value);
        let previous = cx.previous(state_key);
        if !cx.forced && unchanged(previous, source, source_hash, &value) {
            let at = cx.change.occurred_at_ms;
            let kept = Unchanged {
                target_field: target_field.to_string(),
                state: state(source, &value, &converted, at),
                value: converted,
            };
            draft.unchanged.insert(state_key.clone(), kept);
            return;
        }
        let verdict = self.conflict(cx, mapping, previous, source_hash, draft);
        match verdict {
            Verdict::TargetWins => return,
            Verdict::SourceWins => {
                draft
                    .restore
                    .insert(source_field.to_string(), value.clone());
            }
            Verdict::None if mapping.flow == DataFlow::Bidirectional => {
                draft.conflicts.insert(
                    state_key.clone(),
                    FieldConflict {
                        rule: mapping.conflict_rule(),
                        target_field: target_field.to_string(),
                        source_object: self.job.object_in(source).to_string(),
                        source_field: source_field.to_string(),
                        source_value: value.clone(),
                    },
                );
            }
            Verdict::None => {}
        }
        draft.changed.push(source_field.to_string());
        let at = cx.change.occurred_at_ms;
        let field_state = state(source, &value, &converted, at);
        draft.field_states.insert(state_key.clone(), field_state);
        draft.fields.insert(target_field.to_string(), converted);
        self.carry_currency(target, &value, draft);
    }

    /// Both sides changed a bi-directional field since the last sync when the other side's
    /// value was synced here after this side's edit was made; the field's rule picks the winner.
    fn conflict(
        &self,
        cx: &Context,
        mapping: &FieldMapping,
        previous: Option<&FieldState>,
        source_hash: u64,
        draft: &mut Draft,
    ) -> Verdict {
        let (source, at) = (cx.source(), cx.change.occurred_at_ms);
        let Some(prev) = previous.filter(|_| !cx.forced) else {
            return Verdict::None;
        };
        if mapping.flow != DataFlow::Bidirectional || !prev.both_changed(source, at, source_hash) {
            return Verdict::None;
        }
        let rule = mapping.conflict_rule();
        let source_wins = rule.source_wins(source, at, prev.changed_at_ms);
        let winner = if source_wins { source } else { cx.target() };
        draft.notes.push(format!(
            "conflict on {}: both sides changed it; {} keeps the {} value",
            mapping.gainsight,
            rule.as_str(),
            winner.as_str()
        ));
        if source_wins {
            Verdict::SourceWins
        } else {
            Verdict::TargetWins
        }
    }

    /// A multi-currency amount goes with Gainsight's ISO code; a multi-currency Salesforce org
    /// takes it in the record's CurrencyIsoCode.
    fn carry_currency(&self, target: System, value: &Value, draft: &mut Draft) {
        if target != System::Salesforce {
            return;
        }
        let Some(iso) = Money::parse(value).and_then(|m| m.iso_code) else {
            return;
        };
        let object = self.job.object_in(target);
        let Some(code_field) = self
            .schemas
            .and_then(|s| s.get(target, object))
            .and_then(|o| o.field(CURRENCY_ISO_CODE))
        else {
            return;
        };
        match draft.fields.get(CURRENCY_ISO_CODE).and_then(Value::as_str) {
            Some(other) if other != iso => draft.errors.push(format!(
                "{object}.{CURRENCY_ISO_CODE}: the record's amounts carry different ISO codes ({other}, {iso})"
            )),
            _ => match convert(&Value::String(iso), code_field, target) {
                Ok(v) => {
                    draft.fields.insert(CURRENCY_ISO_CODE.to_string(), v);
                }
                Err(e) => draft.errors.push(format!("{object}.{e}")),
            },
        }
    }

    /// Derived (lookup) fields towards the target, from the batch's lookup results.
    pub(super) fn derived_fields(
        &self,
        cx: &Context,
        lookups: &Lookups,
        draft: &mut Draft,
    ) -> Stage<()> {
        for (index, derived) in self.job.derived.iter().enumerate() {
            if derived.target == cx.target() {
                self.derived_field(cx, lookups, index, derived, draft)?;
            }
        }
        Ok(())
    }

    fn derived_field(
        &self,
        cx: &Context,
        lookups: &Lookups,
        index: usize,
        derived: &DerivedMapping,
        draft: &mut Draft,
    ) -> Stage<()> {
        let source = cx.source();
        let values: Option<Vec<Value>> = derived
            .lookup
            .matches
            .iter()
            .map(|m| self.source_value(cx.change, &m.source))
            .collect();
        let Some(values) = values else { return Ok(()) };
        let source_value = if values.len() == 1 {
            values[0].clone()
        } else {
            Value::Array(values.clone())
        };
        let previous = cx.previous(derived.state_key());
        if !cx.forced && unchanged(previous, source, hash(&source_value), &source_value) {
            return Ok(());
        }
        let tuple: Option<Vec<String>> = values.iter().map(|v| text(Some(v))).collect();
        let found = match tuple {
            // An empty match value clears the reference rather than looking anything up.
            None => Value::Null,
            Some(tuple) => self.looked_up(cx, lookups, index, derived, &tuple)?,
        };
        draft.changed.push(derived.lookup.matches[0].source.clone());
        let at = cx.change.occurred_at_ms;
        let field_state = state(source, &source_value, &found, at);
        draft
            .field_states
            .insert(derived.state_key().to_string(), field_state);
        draft.fields.insert(derived.field.clone(), found);
        Ok(())
    }

    /// The value a lookup found for `tuple`, by the mapping's no-match and multiple-match rules.
    fn looked_up(
        &self,
        cx: &Context,
        lookups: &Lookups,
        index: usize,
        derived: &DerivedMapping,
        tuple: &[String],
    ) -> Stage<Value> {
        let job = &self.job.name;
        if let Some(why) = lookups.failure(job, index) {
            return Err(MapOutcome::Retry {
                reason: format!("{} could not run: {why}", derived.describe()),
            });
        }
        if let Some(why) = lookups.refused(job, index, tuple) {
            return Err(cx.rejected(format!(
                "error: {} could not look up {}: {why}",
                derived.describe(),
                conditions(derived, tuple)
            )));
        }
        let matches = lookups.get(job, index, tuple);
        let (on_none, on_many) = (derived.on_no_match, derived.on_multiple_matches);
        match (matches.len(), on_none, on_many) {
            (0, OnNoMatch::Reject, _) => Err(cx.unresolved(
                ParentRef {
                    system: derived.target,
                    object: derived.lookup.object.clone(),
                    matches: (derived.lookup.matches.iter())
                        .map(|m| m.field.clone())
                        .zip(tuple.iter().cloned())
                        .collect(),
                },
                format!(
                    "{} found no {} where {}",
                    derived.describe(),
                    derived.lookup.object,
                    conditions(derived, tuple)
                ),
            )),
            (0, OnNoMatch::LeaveEmpty, _) => Ok(Value::Null),
            (1, _, _) | (_, _, OnMultipleMatches::UseFirst) => {
                Ok(Value::String(matches[0].clone()))
            }
            (n, _, OnMultipleMatches::Error) => Err(cx.rejected(format!(
                "error: {} found {n} {} records where {} ({}); it must match one",
                derived.describe(),
                derived.lookup.object,
                conditions(derived, tuple),
                matches.join(", ")
            ))),
        }
    }
}
