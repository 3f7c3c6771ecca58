//! The mapping engine: applies a job to a change and decides write, ignore or reject. It carries
//! direct mappings by data flow, fills derived (lookup) fields from batched lookup results,
//! honours event actions, checks values against the target schema, suppresses echoes of our own
//! writes by per-field hashes kept in the ledger, and resolves conflicts by each field's rule.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::schema::{convert, normalize_source, Money, Schemas};

/// The field of a multi-currency Salesforce record that holds its amounts' currency.
const CURRENCY_ISO_CODE: &str = "CurrencyIsoCode";
use super::{
    ChangeEvent, ChangeOrigin, DataFlow, FieldConflict, FieldState, Fields, Job, LedgerRecord,
    OnCreated, OnMultipleMatches, OnNoMatch, OnUpdated, Operation, RecordKey, System, WriteCommand,
    WriteMode, Writeback,
};

/// What the mapper decided for one change and job.
#[derive(Clone, Debug, PartialEq)]
pub enum MapOutcome {
    /// The write to the other system, and when a conflict was won by a side whose value our
    /// earlier write had overwritten, a second write restoring it there.
    Write(Vec<WriteCommand>),
    /// Nothing to do, on purpose (echo, delete, do-nothing action, stale); logged with the reason.
    Ignored {
        gainsight_id: Option<String>,
        reason: String,
    },
    /// The change cannot be synced as it is (type check, lookup); marked error with the reason.
    Rejected {
        gainsight_id: Option<String>,
        reason: String,
    },
    /// Something it depends on failed for now (a lookup query): the message is retried.
    Retry { reason: String },
}

/// One lookup to run for a batch: all the match tuples of one derived mapping of one job.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupRequest {
    pub job: String,
    /// Index of the derived mapping in the job.
    pub derived: usize,
    pub system: System,
    pub object: String,
    /// Fields of the intermediate object matched, in order.
    pub match_fields: Vec<String>,
    /// Field whose value is returned.
    pub returns: String,
    /// Distinct tuples of match values, one per record needing the lookup.
    pub tuples: Vec<Vec<String>>,
}

/// Values found per match tuple, for one derived mapping.
type Found = HashMap<Vec<String>, Vec<String>>;

/// Results of the batch's lookups: for each (job, derived mapping, match tuple), the values found.
#[derive(Clone, Debug, Default)]
pub struct Lookups {
    /// job -> derived mapping index -> match tuple -> values found.
    found: HashMap<String, HashMap<usize, Found>>,
    /// Lookups that could not run: their records are retried, not rejected.
    failed: Vec<(String, usize)>,
}

impl Lookups {
    pub fn insert(&mut self, job: &str, derived: usize, tuple: Vec<String>, values: Vec<String>) {
        self.found
            .entry(job.to_string())
            .or_default()
            .entry(derived)
            .or_default()
            .insert(tuple, values);
    }

    pub fn mark_failed(&mut self, job: &str, derived: usize) {
        self.failed.push((job.to_string(), derived));
    }

    pub fn has_failed(&self, job: &str, derived: usize) -> bool {
        self.failed.iter().any(|(j, d)| j == job && *d == derived)
    }

    fn get(&self, job: &str, derived: usize, tuple: &[String]) -> &[String] {
        self.found
            .get(job)
            .and_then(|d| d.get(&derived))
            .and_then(|t| t.get(tuple))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Groups what `changes` need into one request per derived mapping (one query per batch).
    pub fn requests<'a>(
        jobs: impl IntoIterator<Item = (&'a Job, &'a ChangeEvent)>,
        schemas: Option<&Schemas>,
    ) -> Vec<LookupRequest> {
        let mut by_key: BTreeMap<(String, usize), LookupRequest> = BTreeMap::new();
        for (job, change) in jobs {
            let mapper = Mapper::new(job, schemas);
            for (index, tuple) in mapper.lookup_tuples(change) {
                let d = &job.derived[index];
                let request =
                    by_key
                        .entry((job.name.clone(), index))
                        .or_insert_with(|| LookupRequest {
                            job: job.name.clone(),
                            derived: index,
                            system: d.target,
                            object: d.lookup.object.clone(),
                            match_fields: d
                                .lookup
                                .matches
                                .iter()
                                .map(|m| m.field.clone())
                                .collect(),
                            returns: d.lookup.returns.clone().unwrap_or_else(|| match d.target {
                                System::Gainsight => "Gsid".into(),
                                System::Salesforce => "Id".into(),
                            }),
                            tuples: Vec::new(),
                        });
                if !request.tuples.contains(&tuple) {
                    request.tuples.push(tuple);
                }
            }
        }
        by_key.into_values().collect()
    }
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
    /// The ledger key: the GSID, or `sf:{Id}` while the pair has none.
    pub fn ledger_key(&self) -> Option<String> {
        self.gainsight_id.clone().or_else(|| {
            self.salesforce_id
                .as_deref()
                .map(WriteCommand::salesforce_ledger_key)
        })
    }
}

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
    pub fn ledger_key(&self, change: &ChangeEvent) -> Option<String> {
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
        let job = self.job;
        let source = change.source;
        let target = source.other();
        let mut ids = self.pair_ids(change);
        if let Some(l) = ledger {
            if ids.gainsight_id.is_none() && !l.gainsight_id.starts_with("sf:") {
                ids.gainsight_id = Some(l.gainsight_id.clone());
            }
            if ids.salesforce_id.is_none() {
                ids.salesforce_id = l.salesforce_id.clone();
            }
        }
        let key = ids.ledger_key();
        let ignored = |reason: String| MapOutcome::Ignored {
            gainsight_id: key.clone(),
            reason,
        };
        let rejected = |reason: String| MapOutcome::Rejected {
            gainsight_id: key.clone(),
            reason,
        };

        let actions = job.events.from(source);
        let mode = match (change.operation, actions.on_created, actions.on_updated) {
            (Operation::Deleted, _, _) => {
                return ignored(format!(
                    "{} {} was deleted in {}; deletes are logged, not propagated",
                    change.object,
                    change.record_id,
                    source.as_str()
                ))
            }
            (Operation::Created, OnCreated::DoNothing, _) => {
                return ignored(format!(
                    "job {} does nothing for records created in {}",
                    job.name,
                    source.as_str()
                ))
            }
            (Operation::Updated, _, OnUpdated::DoNothing) => {
                return ignored(format!(
                    "job {} does nothing for records updated in {}",
                    job.name,
                    source.as_str()
                ))
            }
            (Operation::Created, OnCreated::Create, _) => WriteMode::Create,
            (Operation::Created, OnCreated::CreateAndUpdate, _) => WriteMode::Upsert,
            (Operation::Updated, _, OnUpdated::Update) => WriteMode::Update,
        };

        if let Some(changed) = &change.changed_fields {
            if !changed.is_empty() && changed.iter().all(|f| job.is_identifier(source, f)) {
                return ignored(format!(
                    "only identifiers changed ({}); identifier changes alone do not trigger a write",
                    changed.join(", ")
                ));
            }
        }

        if let Some(previous) = ledger.and_then(|l| l.changed_at(source)) {
            if previous > change.occurred_at_ms {
                return ignored(format!(
                    "stale: a change from {} made at {} was already written; this one is from {}",
                    source.as_str(),
                    crate::time::rfc3339(previous),
                    crate::time::rfc3339(change.occurred_at_ms)
                ));
            }
        }

        // An operator's resync rewrites on purpose, even when the values look unchanged.
        let forced = change.origin == ChangeOrigin::Resync;
        let target_schema = self
            .schemas
            .and_then(|s| s.get(target, job.object_in(target)));
        let states = ledger.map(|l| &l.fields);
        let mut fields = Fields::new();
        let mut field_states = BTreeMap::new();
        let mut restore = Fields::new();
        let mut conflicts = BTreeMap::new();
        let mut errors = Vec::new();
        let mut notes = Vec::new();
        let mut changed_names = Vec::new();

        for mapping in job.fields.iter().filter(|m| m.flow.carries_from(source)) {
            let source_field = mapping.field_in(source);
            let Some(value) = self.source_value(change, source_field) else {
                continue;
            };
            let target_field = mapping.field_in(target);
            let converted = match self.convert_for(target, target_field, &value) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let state_key = &mapping.gainsight;
            let source_hash = hash(&value);
            let previous = states.and_then(|s| s.get(state_key));
            if !forced && unchanged(previous, source, source_hash, &value) {
                continue;
            }
            // Settled here (restore included): the pusher need not settle it again.
            let mut settled_here = false;
            if let Some(prev) = previous.filter(|_| !forced) {
                // Both sides changed the field since the last sync: the other side's value was
                // synced here after this side's edit was made.
                if mapping.flow == DataFlow::Bidirectional
                    && prev.both_changed(source, change.occurred_at_ms, source_hash)
                {
                    let rule = mapping.conflict_rule();
                    let winner =
                        if rule.source_wins(source, change.occurred_at_ms, prev.changed_at_ms) {
                            source
                        } else {
                            target
                        };
                    notes.push(format!(
                        "conflict on {state_key}: both sides changed it; {} keeps the {} value",
                        rule.as_str(),
                        winner.as_str()
                    ));
                    if winner == target {
                        continue;
                    }
                    restore.insert(source_field.to_string(), value.clone());
                    settled_here = true;
                }
            }
            changed_names.push(source_field.to_string());
            field_states.insert(
                state_key.clone(),
                state(source, &value, &converted, change.occurred_at_ms),
            );
            if mapping.flow == DataFlow::Bidirectional && !settled_here {
                conflicts.insert(
                    state_key.clone(),
                    FieldConflict {
                        rule: mapping.conflict_rule(),
                        target_field: target_field.to_string(),
                        source_object: job.object_in(source).to_string(),
                        source_field: source_field.to_string(),
                        source_value: value.clone(),
                    },
                );
            }
            fields.insert(target_field.to_string(), converted);
            // Seed 000: a multi-currency amount goes with Gainsight's ISO code; a multi-currency
            // Salesforce org takes it in the record's CurrencyIsoCode.
            if let (System::Salesforce, Some(iso)) =
                (target, Money::parse(&value).and_then(|m| m.iso_code))
            {
                if let Some(code_field) = target_schema.and_then(|o| o.field(CURRENCY_ISO_CODE)) {
                    match fields.get(CURRENCY_ISO_CODE).and_then(Value::as_str) {
                        Some(other) if other != iso => errors.push(format!(
                            "{}.{CURRENCY_ISO_CODE}: the record's amounts carry different ISO codes ({other}, {iso})",
                            job.object_in(target)
                        )),
                        _ => match convert(&Value::String(iso), code_field, target) {
                            Ok(v) => {
                                fields.insert(CURRENCY_ISO_CODE.to_string(), v);
                            }
                            Err(e) => errors.push(format!("{}.{e}", job.object_in(target))),
                        },
                    }
                }
            }
        }

        for (index, derived) in job.derived.iter().enumerate() {
            if derived.target != target {
                continue;
            }
            let values: Option<Vec<Value>> = derived
                .lookup
                .matches
                .iter()
                .map(|m| self.source_value(change, &m.source))
                .collect();
            let Some(values) = values else { continue };
            let source_value = if values.len() == 1 {
                values[0].clone()
            } else {
                Value::Array(values.clone())
            };
            let source_hash = hash(&source_value);
            let previous = states.and_then(|s| s.get(derived.state_key()));
            if !forced && unchanged(previous, source, source_hash, &source_value) {
                continue;
            }
            let tuple: Option<Vec<String>> = values.iter().map(|v| text(Some(v))).collect();
            let found = match tuple {
                // An empty match value clears the reference rather than looking anything up.
                None => Value::Null,
                Some(_) if lookups.has_failed(&job.name, index) => {
                    return MapOutcome::Retry {
                        reason: format!("{} could not run", derived.describe()),
                    }
                }
                Some(tuple) => {
                    let matches = lookups.get(&job.name, index, &tuple);
                    match (
                        matches.len(),
                        derived.on_no_match,
                        derived.on_multiple_matches,
                    ) {
                        (0, OnNoMatch::Reject, _) => {
                            return rejected(format!(
                                "rejected: {} found no {} where {}",
                                derived.describe(),
                                derived.lookup.object,
                                conditions(derived, &tuple)
                            ))
                        }
                        (0, OnNoMatch::LeaveEmpty, _) => Value::Null,
                        (1, _, _) | (_, _, OnMultipleMatches::UseFirst) => {
                            Value::String(matches[0].clone())
                        }
                        (n, _, OnMultipleMatches::Error) => {
                            return rejected(format!(
                                "error: {} found {n} {} records where {} ({}); it must match one",
                                derived.describe(),
                                derived.lookup.object,
                                conditions(derived, &tuple),
                                matches.join(", ")
                            ))
                        }
                    }
                }
            };
            changed_names.push(derived.lookup.matches[0].source.clone());
            field_states.insert(
                derived.state_key().to_string(),
                state(source, &source_value, &found, change.occurred_at_ms),
            );
            fields.insert(derived.field.clone(), found);
        }

        if !errors.is_empty() {
            return rejected(format!(
                "data type validation failed: {}",
                errors.join("; ")
            ));
        }
        if fields.is_empty() {
            let mut reason = if notes.is_empty() {
                format!(
                    "no mapped field changed: every value from {} equals what was last synced (echo of our own write, or no change)",
                    source.as_str()
                )
            } else {
                String::new()
            };
            reason.push_str(&notes.join("; "));
            return ignored(reason);
        }
        if changed_names.iter().all(|f| job.is_identifier(source, f)) {
            return ignored(format!(
                "only identifiers changed ({}); identifier changes alone do not trigger a write",
                changed_names.join(", ")
            ));
        }

        // Identifiers and required fields go along with every write, so the pair stays linked.
        for pair in job.identifiers.iter().chain(&job.required) {
            let target_field = pair.field_in(target);
            if target_field == job.id_field_in(target) || fields.contains_key(target_field) {
                continue;
            }
            if let Some(value) = self.source_value(change, pair.field_in(source)) {
                let converted = match self.convert_for(target, target_field, &value) {
                    Ok(v) => v,
                    Err(e) => return rejected(format!("data type validation failed: {e}")),
                };
                if !converted.is_null() {
                    fields.insert(target_field.to_string(), converted);
                }
            }
        }

        let record_key = match self.target_key(target, mode, &ids, &fields) {
            Ok(k) => k,
            Err(reason) => return rejected(reason),
        };
        if let RecordKey::ExternalId { field, value } = &record_key {
            fields.insert(field.clone(), Value::String(value.clone()));
        }
        let Some(ledger_key) = key.clone() else {
            return rejected(format!(
                "{} {} carries no id to record it by",
                change.object, change.record_id
            ));
        };
        // A pair seen for the first time from one side: that side learns the other's id (the
        // Account its GSID, the Company its Salesforce Id), as Gainsight's connector keeps them.
        let writeback = match (target, &ids.gainsight_id, &ids.salesforce_id) {
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
        };

        let command =
            |target: System, key: RecordKey, mode: WriteMode, fields: Fields| WriteCommand {
                job: job.name.clone(),
                target,
                object: job.object_in(target).to_string(),
                key,
                mode,
                fields,
                gainsight_id: ledger_key.clone(),
                salesforce_id: ids.salesforce_id.clone(),
                field_states: field_states.clone(),
                writeback: None,
                source,
                conflicts: BTreeMap::new(),
                event_id: change.event_id.clone(),
                source_changed_at_ms: change.occurred_at_ms,
                received_at_ms: change.received_at_ms,
            };
        let mut main = command(target, record_key, mode, fields);
        main.writeback = writeback;
        main.conflicts = conflicts;
        let mut commands = vec![main];
        if !restore.is_empty() {
            commands.push(command(
                source,
                RecordKey::Id {
                    value: change.record_id.clone(),
                },
                WriteMode::Update,
                restore,
            ));
        }
        MapOutcome::Write(commands)
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
        mode: WriteMode,
        ids: &PairIds,
        fields: &Fields,
    ) -> Result<RecordKey, String> {
        let job = self.job;
        match target {
            System::Salesforce => {
                // An update of a known Account needs no lookup by external id.
                if let (WriteMode::Update, Some(id)) = (mode, &ids.salesforce_id) {
                    return Ok(RecordKey::Id { value: id.clone() });
                }
                if let (Some(field), Some(gsid)) = (job.gsid_external_field(), &ids.gainsight_id) {
                    return Ok(RecordKey::ExternalId {
                        field: field.to_string(),
                        value: gsid.clone(),
                    });
                }
                match &ids.salesforce_id {
                    Some(id) => Ok(RecordKey::Id { value: id.clone() }),
                    None => Err(format!(
                        "no identifier of job {} has a value to match a Salesforce {}",
                        job.name, job.salesforce.object
                    )),
                }
            }
            System::Gainsight => {
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
    }
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
