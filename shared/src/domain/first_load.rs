//! A first load's plan: what both systems already hold, matched before anything is written.
//! Pairs already in the ledger stay; then the job's identifiers link records that name each other
//! (the GSID kept in Salesforce, the Salesforce Id kept in Gainsight); then its match keys link
//! records that agree on a normalised value. A record with two or more candidates, or a candidate
//! two records claim, is ambiguous and left alone. What has no twin is created where the job
//! creates, and a pair whose mapped values differ gets the updates the fields' directions and
//! conflict rules decide.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::change::GAINSIGHT_MODIFIED;
use super::job::{DataFlow, MatchKey, Normalize, OnCreated};
use super::schema::Schemas;
use super::{Fields, Job, System};

mod side;
pub mod steps;
pub mod table;
pub mod validate;

pub use side::IdIndex;
use side::Side;
pub use table::Table;

/// What both systems hold for one job, the pairs its ledger already has (GSID → Salesforce
/// id), and the job's objects as described (what is not described is not checked).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub gainsight: Table,
    pub salesforce: Table,
    pub linked: HashMap<String, String>,
    pub schemas: Schemas,
}

/// Why two records are a pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkedBy {
    /// The ledger had them.
    Ledger,
    /// One names the other in an identifier field (`Gsid = Gainsight_Company_Id__c`).
    Identifier(String),
    /// They agree on a match key (`Domain ~ Website`).
    MatchKey(String),
}

/// What the load does with one record or pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Linked (nothing to write for the link itself when `LinkedBy::Ledger`).
    Pair(LinkedBy),
    /// A Gainsight record with no twin, created in Salesforce.
    CreateInSalesforce,
    /// A Salesforce record with no twin, created in Gainsight.
    CreateInGainsight,
    /// No twin, and the job does not create from this side.
    NoTwin(System),
    /// No twin, and this load writes only from the other side (`from`).
    NotLoaded(System),
    /// Two or more candidates, or a candidate another record claims: left alone, listed with
    /// the other side's records in question.
    Ambiguous {
        candidates: Vec<String>,
        why: String,
    },
}

/// One field a pair's load writes: on `target`, `value` replacing `was`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldUpdate {
    pub target: System,
    pub field: String,
    pub value: Value,
    pub was: Value,
}

/// One row of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRow {
    pub gsid: Option<String>,
    pub salesforce_id: Option<String>,
    pub action: Action,
    /// For a pair: the fields whose values differ, as they will be written.
    pub updates: Vec<FieldUpdate>,
    /// Why the target would refuse this row's write (`validate`): it is not written, and a pair
    /// is still linked.
    pub refused: Option<String>,
}

/// How many rows of each kind a plan holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub already_linked: usize,
    pub link_by_identifier: usize,
    pub link_by_match_key: usize,
    pub create_in_salesforce: usize,
    pub create_in_gainsight: usize,
    pub no_twin: usize,
    pub ambiguous: usize,
    /// Pairs with at least one field to write (refused ones not counted).
    pub to_update: usize,
    /// Creates and pair updates the target would refuse, so not written.
    #[serde(default)]
    pub refused: usize,
}

/// The counts of `rows`.
pub fn counts(rows: &[PlanRow]) -> Counts {
    let mut c = Counts::default();
    for row in rows {
        let refused = row.refused.is_some();
        match &row.action {
            Action::Pair(LinkedBy::Ledger) => c.already_linked += 1,
            Action::Pair(LinkedBy::Identifier(_)) => c.link_by_identifier += 1,
            Action::Pair(LinkedBy::MatchKey(_)) => c.link_by_match_key += 1,
            Action::CreateInSalesforce if !refused => c.create_in_salesforce += 1,
            Action::CreateInGainsight if !refused => c.create_in_gainsight += 1,
            Action::CreateInSalesforce | Action::CreateInGainsight => {}
            Action::NoTwin(_) | Action::NotLoaded(_) => c.no_twin += 1,
            Action::Ambiguous { .. } => c.ambiguous += 1,
        }
        if refused {
            c.refused += 1;
        } else if !row.updates.is_empty() {
            c.to_update += 1;
        }
    }
    c
}

/// `value` in `how`'s form, `None` when empty (an empty value matches nothing).
pub fn normalize(how: Normalize, value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_lowercase(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let text = match how {
        Normalize::Text => text.split_whitespace().collect::<Vec<_>>().join(" "),
        Normalize::Email => text,
        Normalize::Domain => {
            let bare = (text.strip_prefix("https://"))
                .or_else(|| text.strip_prefix("http://"))
                .unwrap_or(&text);
            let bare = bare.strip_prefix("www.").unwrap_or(bare);
            bare.trim_end_matches('/').to_string()
        }
    };
    (!text.is_empty()).then_some(text)
}

/// How a value is compared: as written, as a Salesforce id (15 or 18 characters), or normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Form {
    Exact,
    SalesforceId,
    Normal(Normalize),
}

impl Form {
    fn of(system: System, field: &str) -> Self {
        if system == System::Salesforce && field == "Id" {
            Form::SalesforceId
        } else {
            Form::Exact
        }
    }

    /// The key `value` is indexed and looked up by.
    fn key(self, value: &Value) -> Option<String> {
        match self {
            Form::Exact => text(value),
            Form::SalesforceId => text(value).map(|t| t.chars().take(15).collect()),
            Form::Normal(how) => normalize(how, value),
        }
    }
}

/// The Salesforce fields `job` matches on, each with how it is compared.
fn salesforce_keys(job: &Job) -> Vec<(String, Form)> {
    let identifiers = (job.identifiers.iter()).map(|i| {
        (
            i.salesforce.clone(),
            Form::of(System::Salesforce, &i.salesforce),
        )
    });
    let keys = (job.match_keys.iter()).map(|k| (k.salesforce.clone(), Form::Normal(k.normalize)));
    let id = (job.salesforce.id_field.clone(), Form::SalesforceId);
    identifiers.chain(keys).chain(std::iter::once(id)).collect()
}

/// Text of a value (numbers as written), `None` when null or empty.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The plan of a first load of `job` over `snapshot`, writing from `from` only when it is given
/// (both sides otherwise): the other side's records with no twin are left alone, and a pair's
/// values taken from the other side are not written. Links are made whatever `from` is.
pub fn plan(job: &Job, snapshot: &Snapshot, from: Option<System>) -> Vec<PlanRow> {
    plan_keeping_rows(job, snapshot, from).0
}

/// The plan (`plan`), and where each record is in its side's table, by id, as the plan found
/// them: a load carries its writes' records from there without reading every record again.
pub fn plan_keeping_rows(
    job: &Job,
    snapshot: &Snapshot,
    from: Option<System>,
) -> (Vec<PlanRow>, steps::RecordRows) {
    let gs = Side::new(&snapshot.gainsight, &job.gainsight.id_field, &[]);
    let sf = Side::new(
        &snapshot.salesforce,
        &job.salesforce.id_field,
        &salesforce_keys(job),
    );
    // Sized once: a vector of a million rows doubling as it grows holds both copies a moment.
    let mut rows: Vec<PlanRow> = Vec::with_capacity(gs.ids.len() + sf.ids.len());
    let mut claims = Claims::new(sf.table.len());
    for at in gs.ids.in_order() {
        let values = gs.table.row(at);
        let record = |field: &str| values.as_ref().and_then(|r| r.get(field));
        let Some(gsid) = record(&job.gainsight.id_field).and_then(text) else {
            continue;
        };
        let (action, twin) = match_gainsight(job, snapshot, (&gsid, &record), &sf);
        if let Some(twin_row) = twin.as_ref().and_then(|t| sf.ids.row_of(sf.table, t)) {
            claims.claim(twin_row, rows.len());
        }
        rows.push(PlanRow {
            gsid: Some(gsid),
            salesforce_id: twin,
            action,
            updates: Vec::new(),
            refused: None,
        });
    }
    settle_claims(&mut rows, &claims.more);
    add_salesforce_only(job, &sf, &mut rows);
    for row in &mut rows {
        let gainsight = row.gsid.as_ref().and_then(|g| gs.record(g));
        let salesforce = (row.salesforce_id.as_ref()).and_then(|s| sf.record(s));
        let records = validate::Records {
            gainsight: gainsight.as_ref(),
            salesforce: salesforce.as_ref(),
        };
        if let (Action::Pair(_), Some(g), Some(s)) =
            (&row.action, records.gainsight, records.salesforce)
        {
            row.updates = settle(job, g, s);
        }
        if let Some(from) = from {
            only_from(row, from);
        }
        row.refused = validate::refusal(job, &snapshot.schemas, row, &records);
    }
    let found = steps::RecordRows {
        gainsight: gs.ids,
        salesforce: sf.ids,
    };
    (rows, found)
}

/// One record's value of a field, looked up by the field's name.
type FieldOf<'a, 'r> = &'r dyn Fn(&str) -> Option<&'a Value>;

/// What becomes of one Gainsight record, and its Salesforce twin if it has one.
fn match_gainsight<'a>(
    job: &Job,
    snapshot: &Snapshot,
    (gsid, record): (&str, FieldOf<'a, '_>),
    sf: &Side,
) -> (Action, Option<String>) {
    if let Some(linked) = snapshot.linked.get(gsid) {
        let id_field = &job.salesforce.id_field;
        let found = sf.holding(id_field, Form::SalesforceId, &Value::String(linked.clone()));
        let id = found.into_iter().next().unwrap_or_else(|| linked.clone());
        return (Action::Pair(LinkedBy::Ledger), Some(id));
    }
    for ident in &job.identifiers {
        let Some(value) = record(&ident.gainsight) else {
            continue;
        };
        let form = Form::of(System::Salesforce, &ident.salesforce);
        let found = sf.holding(&ident.salesforce, form, value);
        let by = format!("identifier {} = {}", ident.gainsight, ident.salesforce);
        if let Some(decided) = decide(found, by) {
            return decided;
        }
    }
    for key in &job.match_keys {
        if let Some(decided) = match_on_key(key, record(&key.gainsight), sf) {
            return decided;
        }
    }
    let creates = job.events.from_gainsight.on_created != OnCreated::DoNothing;
    let action = if creates {
        Action::CreateInSalesforce
    } else {
        Action::NoTwin(System::Gainsight)
    };
    (action, None)
}

fn match_on_key(
    key: &MatchKey,
    value: Option<&Value>,
    sf: &Side,
) -> Option<(Action, Option<String>)> {
    let value = value?;
    let found = sf.holding(&key.salesforce, Form::Normal(key.normalize), value);
    decide(
        found,
        format!("match key {} ~ {}", key.gainsight, key.salesforce),
    )
}

/// One candidate is a pair, several are ambiguous, none is no decision.
fn decide(found: Vec<String>, by: String) -> Option<(Action, Option<String>)> {
    match found.len() {
        0 => None,
        1 => {
            let linked_by = if by.starts_with("identifier") {
                LinkedBy::Identifier(by)
            } else {
                LinkedBy::MatchKey(by)
            };
            Some((Action::Pair(linked_by), found.into_iter().next()))
        }
        _ => {
            let why = format!("{} Salesforce records agree on {by}", found.len());
            let action = Action::Ambiguous {
                candidates: found,
                why,
            };
            Some((action, None))
        }
    }
}

/// Which plan rows claim each Salesforce record (by its row in the table): the first claim of
/// each in a flat array, the records claimed more than once (few) in a map, so a million
/// claims cost four bytes each.
struct Claims {
    first: Vec<u32>,
    more: BTreeMap<usize, Vec<usize>>,
}

impl Claims {
    const NONE: u32 = u32::MAX;

    fn new(records: usize) -> Self {
        Claims {
            first: vec![Self::NONE; records],
            more: BTreeMap::new(),
        }
    }

    /// Plan row `by` claims Salesforce record `record`.
    fn claim(&mut self, record: usize, by: usize) {
        let Some(first) = self.first.get_mut(record) else {
            return;
        };
        match *first {
            Self::NONE => *first = by as u32,
            earlier => (self.more.entry(record))
                .or_insert_with(|| vec![earlier as usize])
                .push(by),
        }
    }
}

/// A Salesforce record claimed by two or more Gainsight records makes each of them ambiguous
/// (the ledger's own pairs stay: they are not the load's to undo).
fn settle_claims(rows: &mut [PlanRow], claims: &BTreeMap<usize, Vec<usize>>) {
    for claimants in claims.values() {
        let Some(twin) = claimants
            .first()
            .and_then(|i| rows[*i].salesforce_id.clone())
        else {
            continue;
        };
        let new: Vec<usize> = (claimants.iter().copied())
            .filter(|i| rows[*i].action != Action::Pair(LinkedBy::Ledger))
            .collect();
        if claimants.len() < 2 || new.is_empty() {
            continue;
        }
        let gsids: Vec<String> = (claimants.iter())
            .filter_map(|i| rows[*i].gsid.clone())
            .collect();
        for i in new {
            let why = format!("{twin} is claimed by {}", gsids.join(", "));
            rows[i].action = Action::Ambiguous {
                candidates: vec![twin.clone()],
                why,
            };
            rows[i].salesforce_id = None;
        }
    }
}

/// Rows for the Salesforce records no pair holds: a candidate of an ambiguous match is
/// ambiguous too (creating its twin would make a duplicate); the rest are created in Gainsight
/// where the job creates from Salesforce.
fn add_salesforce_only(job: &Job, sf: &Side, rows: &mut Vec<PlanRow>) {
    // By the record's row in the table: a million pairs in a million bytes.
    let mut paired = vec![false; sf.table.len()];
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows.iter() {
        match (&row.action, &row.salesforce_id, &row.gsid) {
            (Action::Pair(_), Some(id), _) => {
                if let Some(at) = sf.ids.row_of(sf.table, id) {
                    paired[at] = true;
                }
            }
            (Action::Ambiguous { candidates, .. }, _, Some(gsid)) => {
                for c in candidates {
                    held.entry(c.clone()).or_default().push(gsid.clone());
                }
            }
            _ => {}
        }
    }
    let creates = job.events.from_salesforce.on_created != OnCreated::DoNothing;
    for at in sf.ids.in_order().filter(|at| !paired[*at]) {
        let Some(id) = sf
            .table
            .get(at, &job.salesforce.id_field)
            .as_ref()
            .and_then(text)
        else {
            continue;
        };
        let action = match held.get(&id) {
            Some(gsids) => Action::Ambiguous {
                candidates: gsids.clone(),
                why: format!("a candidate of the ambiguous match of {}", gsids.join(", ")),
            },
            None if creates => Action::CreateInGainsight,
            None => Action::NoTwin(System::Salesforce),
        };
        rows.push(PlanRow {
            gsid: None,
            salesforce_id: Some(id),
            action,
            updates: Vec::new(),
            refused: None,
        });
    }
}

/// Leaves out of `row` what a load writing only from `from` does not write.
fn only_from(row: &mut PlanRow, from: System) {
    row.updates.retain(|u| u.target.other() == from);
    match row.action {
        Action::CreateInSalesforce if from != System::Gainsight => {
            row.action = Action::NotLoaded(System::Gainsight)
        }
        Action::CreateInGainsight if from != System::Salesforce => {
            row.action = Action::NotLoaded(System::Salesforce)
        }
        _ => {}
    }
}

/// The writes that bring a pair's mapped fields together: each field whose values differ goes
/// the way its flow says; a two-way field takes the side its conflict rule picks (`newest`: the
/// record modified later, each by its own stamp, `ModifiedDate` and `LastModifiedDate`).
pub fn settle(job: &Job, gs: &Fields, sf: &Fields) -> Vec<FieldUpdate> {
    // Gainsight gives its dates as epoch milliseconds, Salesforce as RFC 3339 text.
    let stamp = |r: &Fields, f: &str| match r.get(f) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => crate::time::parse_ms(s),
        _ => None,
    };
    let gs_at = stamp(gs, GAINSIGHT_MODIFIED).unwrap_or(i64::MIN);
    let sf_at = stamp(sf, "LastModifiedDate").unwrap_or(i64::MIN);
    let mut out = Vec::new();
    for m in &job.fields {
        let g = gs.get(&m.gainsight).cloned().unwrap_or(Value::Null);
        let s = sf.get(&m.salesforce).cloned().unwrap_or(Value::Null);
        if same_value(&g, &s) {
            continue;
        }
        let gainsight_wins = match m.flow {
            DataFlow::GainsightToSalesforce => true,
            DataFlow::SalesforceToGainsight => false,
            DataFlow::Bidirectional => {
                (m.conflict_rule()).source_wins(System::Gainsight, gs_at, sf_at)
            }
        };
        out.push(if gainsight_wins {
            FieldUpdate {
                target: System::Salesforce,
                field: m.salesforce.clone(),
                value: g,
                was: s,
            }
        } else {
            FieldUpdate {
                target: System::Gainsight,
                field: m.gainsight.clone(),
                value: s,
                was: g,
            }
        });
    }
    out
}

/// Whether two values are one: null and empty text alike, numbers by value (`5` and `"5.0"`).
pub fn same_value(a: &Value, b: &Value) -> bool {
    let number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (text(a), text(b)) {
        (None, None) => true,
        (Some(x), Some(y)) => x == y || number(a).is_some_and(|n| number(b) == Some(n)),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
