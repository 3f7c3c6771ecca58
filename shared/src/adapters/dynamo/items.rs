//! DynamoDB items of the state store: a ledger record as an item and back, a ledger update as an
//! update expression, and a pending dedup claim.

use super::*;
use std::collections::BTreeMap;

use crate::domain::{InSync, System};

/// One conditional claim as a transaction item.
pub(super) fn claim_item(table: &str, claim: ClaimWrite) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(claim.item))
        .condition_expression(CLAIM_CONDITION)
        .set_expression_attribute_names(Some(claim.names))
        .set_expression_attribute_values(Some(claim.values))
        .build()
        .map_err(rejected)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A pending dedup claim: the item and the values of `CLAIM_CONDITION`.
pub(super) struct ClaimWrite {
    pub(super) item: Item,
    pub(super) names: HashMap<String, String>,
    pub(super) values: Item,
}

impl ClaimWrite {
    pub(super) fn new(event_id: &str, now_ms: i64, reclaim_after_ms: i64, ttl_s: i64) -> Self {
        let mut item = event_key(event_id);
        item.extend([
            ("state".to_string(), s("pending")),
            ("claimed_at".to_string(), n(now_ms)),
            ("expires_at".to_string(), n(now_ms / 1000 + ttl_s)),
        ]);
        let values = HashMap::from([
            (":now_s".to_string(), n(now_ms / 1000)),
            (":pending".to_string(), s("pending")),
            (":stale".to_string(), n(now_ms - reclaim_after_ms)),
        ]);
        let names = HashMap::from([("#state".to_string(), "state".to_string())]);
        Self {
            item,
            names,
            values,
        }
    }
}

/// The whole item of a ledger record, as `record` would have built it update by update.
pub(super) fn ledger_item(r: &LedgerRecord) -> Result<Item, StoreError> {
    let mut item = ledger_key(&r.job, &r.key);
    item.insert("version".into(), n(r.version));
    let texts = [
        ("salesforce_id", r.salesforce_id.clone()),
        (
            "salesforce_key",
            r.salesforce_id.as_ref().map(|id| format!("{}#{id}", r.job)),
        ),
        ("synced_job", r.synced.then(|| r.job.clone())),
        ("error_job", r.error.then(|| r.job.clone())),
        ("last_error", r.last_error.clone()),
        ("last_ignored_reason", r.last_ignored_reason.clone()),
        ("waiting", r.waiting.clone()),
    ];
    for (name, value) in texts {
        if let Some(v) = value {
            item.insert(name.into(), s(v));
        }
    }
    let numbers = [
        ("last_sync_at", r.last_sync_at_ms),
        ("last_error_at", r.last_error_at_ms),
        ("gs_changed_at", r.gainsight_changed_at_ms),
        ("sf_changed_at", r.salesforce_changed_at_ms),
        ("last_ignored_at", r.last_ignored_at_ms),
        (
            "ignored_count",
            (r.ignored_count > 0).then_some(r.ignored_count as i64),
        ),
    ];
    for (name, value) in numbers {
        if let Some(v) = value {
            item.insert(name.into(), n(v));
        }
    }
    for (field, state) in &r.fields {
        let json = serde_json::to_string(state).map_err(rejected)?;
        item.insert(format!("{FIELD_STATE_PREFIX}{field}"), s(json));
    }
    for entry in &r.history {
        let json = serde_json::to_string(entry).map_err(rejected)?;
        item.insert(history_slot(entry.version), s(json));
    }
    for (target, write) in &r.parked {
        let json = serde_json::to_string(write).map_err(rejected)?;
        item.insert(parked_attribute(*target), s(json));
    }
    for (source, at_ms) in &r.mapped_at {
        item.insert(mapped_attribute(*source).into(), n(*at_ms));
    }
    for (side, presence) in &r.presence {
        let json = serde_json::to_string(presence).map_err(rejected)?;
        item.insert(presence_attribute(*side), s(json));
    }
    Ok(item)
}

/// The attribute holding the time of the last change from `source` written (or found in sync).
pub(super) fn changed_attribute(source: System) -> &'static str {
    match source {
        System::Gainsight => "gs_changed_at",
        System::Salesforce => "sf_changed_at",
    }
}

/// The attribute holding `LedgerRecord::mapped_at` of `source`.
pub(super) fn mapped_attribute(source: System) -> &'static str {
    match source {
        System::Gainsight => "gs_mapped_at",
        System::Salesforce => "sf_mapped_at",
    }
}

/// The condition of a note that a write was queued: on a record in the ledger, and newer than
/// the note there.
pub(super) const MAPPED_CONDITION: &str =
    "attribute_exists(pk) AND (attribute_not_exists(#mapped) OR #mapped < :at)";

/// The note that the write of `job`'s `key`'s change from `source` made at `at_ms` was queued, as
/// one item of a transaction.
pub(super) fn mapped_item(
    table: &str,
    job: &str,
    (key, source, at_ms): &(LedgerKey, System, i64),
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(ledger_key(job, key)))
        .update_expression("SET #mapped = :at")
        .condition_expression(MAPPED_CONDITION)
        .expression_attribute_names("#mapped", mapped_attribute(*source))
        .expression_attribute_values(":at", n(*at_ms))
        .build()
        .map_err(rejected)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// The attribute holding the write parked for `target` (see `LedgerRecord::parked`).
fn parked_attribute(target: System) -> String {
    format!("parked_{}", target.as_str())
}

/// The attribute holding what became of `side`'s record (see `LedgerRecord::presence`).
fn presence_attribute(side: System) -> String {
    format!("presence_{}", side.as_str())
}

/// The JSON values a ledger item keeps per system under `attribute(system)` (the writes parked,
/// the sides' presence).
fn per_system<T: serde::de::DeserializeOwned>(
    item: &Item,
    attribute: fn(System) -> String,
) -> BTreeMap<System, T> {
    [System::Gainsight, System::Salesforce]
        .into_iter()
        .filter_map(|system| {
            let json = get_s(item, &attribute(system))?;
            Some((system, serde_json::from_str(&json).ok()?))
        })
        .collect()
}

/// The attribute holding the history entry of `version`: the last `HISTORY_KEPT` outcomes live
/// in a ring of attributes `h0`..`h9`, so adding one overwrites the oldest without a read.
fn history_slot(version: u64) -> String {
    format!("h{}", version % HISTORY_KEPT as u64)
}

/// The version a record is at once a write made at `prior` succeeded.
pub(super) fn next_version(prior: Prior) -> Prior {
    match prior {
        Prior::Absent => Prior::Version(1),
        Prior::Version(v) => Prior::Version(v + 1),
        Prior::Unread => Prior::Unread,
    }
}

/// One ledger write as a DynamoDB request: a record absent when read is put whole (on condition it
/// is still absent); a present one is updated on condition it is still at the version read, which
/// is what lets its history slot be chosen without another read.
pub(super) enum LedgerOp {
    Put(Item),
    Update { key: Item, expr: LedgerExpression },
}

/// The condition of a whole-record put.
pub(super) const ABSENT: &str = "attribute_not_exists(pk)";
/// The condition of an update at the version read.
pub(super) const AT_VERSION: &str = "version = :expected";

impl LedgerOp {
    pub(super) fn of(w: &LedgerWrite, prior: Prior, at_ms: i64) -> Result<Self, StoreError> {
        let Prior::Version(version) = prior else {
            let mut record = LedgerRecord::new(w.job.clone(), w.key.clone());
            record.apply(&w.update, at_ms, &w.run);
            return Ok(LedgerOp::Put(ledger_item(&record)?));
        };
        let mut expr = LedgerExpression::of(&w.job, &w.update, at_ms)?;
        let entry = w.update.history_entry(version + 1, at_ms, &w.run);
        let json = serde_json::to_string(&entry).map_err(rejected)?;
        expr.update = expr.update.replacen("SET ", "SET #hist = :hist, ", 1);
        let names = expr.names.get_or_insert_with(HashMap::new);
        names.insert("#hist".into(), history_slot(version + 1));
        expr.values.insert(":hist".into(), s(json));
        expr.values.insert(":expected".into(), n(version));
        Ok(LedgerOp::Update {
            key: ledger_key(&w.job, &w.key),
            expr,
        })
    }

    pub(super) fn transact_item(self, table: &str) -> Result<TransactWriteItem, StoreError> {
        Ok(match self {
            LedgerOp::Put(item) => {
                let put = Put::builder()
                    .table_name(table)
                    .set_item(Some(item))
                    .condition_expression(ABSENT)
                    .build()
                    .map_err(rejected)?;
                TransactWriteItem::builder().put(put).build()
            }
            LedgerOp::Update { key, expr } => {
                let update = Update::builder()
                    .table_name(table)
                    .set_key(Some(key))
                    .condition_expression(expr.condition())
                    .update_expression(expr.update)
                    .set_expression_attribute_names(expr.names)
                    .set_expression_attribute_values(Some(expr.values))
                    .build()
                    .map_err(rejected)?;
                TransactWriteItem::builder().update(update).build()
            }
        })
    }
}

impl TryFrom<&Item> for LedgerRecord {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Self, Self::Error> {
        let corrupt = |message: &str| StoreError::Corrupt {
            key: format!("{:?}/{:?}", get_s(item, "pk"), get_s(item, "sk")),
            message: message.into(),
        };
        // The key says whose record it is; nothing else has to repeat it.
        let job = get_s(item, "pk")
            .and_then(|pk| pk.strip_prefix("LEDGER#").map(str::to_string))
            .ok_or_else(|| corrupt("not a ledger item"))?;
        let key = get_s(item, "sk")
            .ok_or_else(|| corrupt("no sort key"))?
            .parse()
            .map_err(|e: crate::domain::key::BadLedgerKey| corrupt(&e.to_string()))?;
        Ok(LedgerRecord {
            job,
            key,
            salesforce_id: get_s(item, "salesforce_id"),
            synced: item.contains_key("synced_job"),
            error: item.contains_key("error_job"),
            last_sync_at_ms: get_n(item, "last_sync_at"),
            last_error: get_s(item, "last_error"),
            last_error_at_ms: get_n(item, "last_error_at"),
            fields: item
                .iter()
                .filter_map(|(name, value)| {
                    let field = name.strip_prefix(FIELD_STATE_PREFIX)?;
                    let state = serde_json::from_str(value.as_s().ok()?).ok()?;
                    Some((field.to_string(), state))
                })
                .collect(),
            gainsight_changed_at_ms: get_n(item, "gs_changed_at"),
            salesforce_changed_at_ms: get_n(item, "sf_changed_at"),
            ignored_count: get_n(item, "ignored_count").unwrap_or(0) as u64,
            last_ignored_reason: get_s(item, "last_ignored_reason"),
            last_ignored_at_ms: get_n(item, "last_ignored_at"),
            version: get_n(item, "version").unwrap_or(0) as u64,
            history: history(item),
            parked: per_system(item, parked_attribute),
            mapped_at: [System::Gainsight, System::Salesforce]
                .into_iter()
                .filter_map(|source| Some((source, get_n(item, mapped_attribute(source))?)))
                .collect(),
            waiting: get_s(item, "waiting"),
            presence: per_system(item, presence_attribute),
        })
    }
}

/// The history entries of a ledger item, oldest first.
fn history(item: &Item) -> Vec<HistoryEntry> {
    let mut entries: Vec<HistoryEntry> = (0..HISTORY_KEPT as u64)
        .filter_map(|slot| get_s(item, &history_slot(slot)))
        .filter_map(|json| serde_json::from_str(&json).ok())
        .collect();
    entries.sort_by_key(|e| e.version);
    entries
}

/// A ledger update as a DynamoDB update expression: every change is relative (counters, SET of
/// the fields written, REMOVE of the error status), so applying it never needs a read.
pub(super) struct LedgerExpression {
    pub(super) update: String,
    pub(super) names: Option<HashMap<String, String>>,
    pub(super) values: HashMap<String, AttributeValue>,
    /// What must hold besides the version (`LedgerUpdate::holds_on`), if anything.
    pub(super) condition: Option<String>,
}

impl LedgerExpression {
    /// The condition of the update at the version read.
    pub(super) fn condition(&self) -> String {
        match &self.condition {
            Some(more) => format!("{AT_VERSION} AND {more}"),
            None => AT_VERSION.to_string(),
        }
    }
}

/// What an ignored change sets.
const IGNORED: &str = "last_ignored_reason = :reason, last_ignored_at = :at, \
     ignored_count = if_not_exists(ignored_count, :zero) + :one";

impl LedgerExpression {
    pub(super) fn of(job: &str, update: &LedgerUpdate, at_ms: i64) -> Result<Self, StoreError> {
        let mut values = HashMap::from([
            (":at".to_string(), n(at_ms)),
            (":zero".to_string(), n(0)),
            (":one".to_string(), n(1)),
        ]);
        let mut names = HashMap::new();
        let mut condition = None;
        let common = "version = if_not_exists(version, :zero) + :one";
        let update = match update {
            LedgerUpdate::Synced { .. } => {
                let mut expr = format!("SET {common}");
                synced(job, update, &mut expr, (&mut names, &mut values))?;
                expr
            }
            LedgerUpdate::Failed { message } => {
                values.insert(":job".into(), s(job));
                values.insert(":msg".into(), s(message));
                format!("SET {common}, error_job = :job, last_error = :msg, last_error_at = :at REMOVE waiting")
            }
            LedgerUpdate::Waiting { reason } => {
                values.insert(":reason".into(), s(reason));
                format!("SET {common}, waiting = :reason")
            }
            LedgerUpdate::Imported { salesforce_id, .. } => {
                values.insert(":sfid".into(), s(salesforce_id));
                values.insert(":sfkey".into(), s(format!("{job}#{salesforce_id}")));
                format!("SET {common}, salesforce_id = :sfid, salesforce_key = :sfkey")
            }
            LedgerUpdate::Unlinked { .. } => {
                format!("SET {common} REMOVE salesforce_id, salesforce_key")
            }
            LedgerUpdate::Ignored { reason } => {
                values.insert(":reason".into(), s(reason));
                format!("SET {common}, {IGNORED}")
            }
            LedgerUpdate::InSync { reason, seen } => {
                values.insert(":reason".into(), s(reason));
                condition = Some(in_sync(seen, (&mut names, &mut values)));
                // Read at this version with the source's change time no later (the mapper's
                // staleness check), so setting it is keeping the later of the two.
                format!("SET {common}, {IGNORED}, #changed = :changed")
            }
            LedgerUpdate::Parked { reason, write } => {
                values.insert(":reason".into(), s(reason));
                let json = serde_json::to_string(write).map_err(rejected)?;
                values.insert(":parked".into(), s(json));
                let parked = parked_attribute(write.target);
                format!("SET {common}, {IGNORED}, {parked} = :parked")
            }
            LedgerUpdate::Presence {
                reason,
                side,
                presence,
            } => {
                values.insert(":reason".into(), s(reason));
                let json = serde_json::to_string(presence).map_err(rejected)?;
                values.insert(":presence".into(), s(json));
                let attribute = presence_attribute(*side);
                format!("SET {common}, {IGNORED}, {attribute} = :presence")
            }
        };
        // DynamoDB refuses a value or name the expressions do not use (a ValidationException),
        // and the placeholders above are shared by every update.
        let used =
            |key: &str| mentions(&update, key) || condition.is_some_and(|c: &str| mentions(c, key));
        values.retain(|k, _| used(k));
        names.retain(|k, _| used(k));
        let names = (!names.is_empty()).then_some(names);
        Ok(Self {
            update,
            names,
            values,
            condition: condition.map(str::to_string),
        })
    }
}

/// Whether `expression` names the placeholder `key` (`:at` in `= :at,` but not in `:attr`).
fn mentions(expression: &str, key: &str) -> bool {
    expression.match_indices(key).any(|(i, _)| {
        let next = expression[i + key.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The names and values an in-sync note sets (`#changed = :changed`), and its condition: the
/// source's `mapped_at` as the mapper read it.
fn in_sync(
    seen: &InSync,
    (names, values): (
        &mut HashMap<String, String>,
        &mut HashMap<String, AttributeValue>,
    ),
) -> &'static str {
    values.insert(":changed".into(), n(seen.changed_at_ms));
    names.insert("#changed".into(), changed_attribute(seen.source).into());
    names.insert("#mapped".into(), mapped_attribute(seen.source).into());
    match seen.mapped_at {
        Some(at) => {
            values.insert(":mapped".into(), n(at));
            "#mapped = :mapped"
        }
        None => "attribute_not_exists(#mapped)",
    }
}

/// The part of a ledger update expression a sync adds: when, from which side, the states of the
/// fields written, the Salesforce id learnt; the error status and what was parked for the
/// system written go.
fn synced(
    job: &str,
    update: &LedgerUpdate,
    expr: &mut String,
    (names, values): (
        &mut HashMap<String, String>,
        &mut HashMap<String, AttributeValue>,
    ),
) -> Result<(), StoreError> {
    let LedgerUpdate::Synced {
        salesforce_id,
        source,
        source_changed_at_ms,
        fields,
    } = update
    else {
        return Ok(());
    };
    let changed = changed_attribute(*source);
    expr.push_str(&format!(
        ", synced_job = :job, last_sync_at = :at, {changed} = :changed"
    ));
    values.insert(":job".into(), s(job));
    values.insert(":changed".into(), n(source_changed_at_ms));
    for (i, (field, state)) in fields.iter().enumerate() {
        let json = serde_json::to_string(state).map_err(rejected)?;
        expr.push_str(&format!(", #f{i} = :f{i}"));
        names.insert(format!("#f{i}"), format!("{FIELD_STATE_PREFIX}{field}"));
        values.insert(format!(":f{i}"), s(json));
    }
    if let Some(id) = salesforce_id {
        expr.push_str(", salesforce_id = :sfid, salesforce_key = :sfkey");
        values.insert(":sfid".into(), s(id));
        values.insert(":sfkey".into(), s(format!("{job}#{id}")));
    }
    // The last attempt succeeded: the record leaves the error status (its last error text stays
    // for the record's history), and what was parked for the system written went along.
    expr.push_str(&format!(
        " REMOVE error_job, waiting, {}",
        parked_attribute(source.other())
    ));
    Ok(())
}

/// `writes` in chunks of at most `size` in which no record appears twice (a transaction may
/// touch an item only once), each write with its position in `writes`; a repeated record goes
/// to a later chunk, in order.
pub(super) fn distinct_chunks(
    writes: &[LedgerWrite],
    size: usize,
) -> Vec<Vec<(usize, &LedgerWrite)>> {
    let mut chunks: Vec<Vec<(usize, &LedgerWrite)>> = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        let fits = chunks
            .iter_mut()
            .find(|c| c.len() < size && !c.iter().any(|(_, o)| o.job == w.job && o.key == w.key));
        match fits {
            Some(chunk) => chunk.push((i, w)),
            None => chunks.push(vec![(i, w)]),
        }
    }
    chunks
}
