//! A first load's plan: what both systems already hold, matched before anything is written.
//! Pairs already in the ledger stay; then the job's identifiers link records that name each other
//! (the GSID kept in Salesforce, the Salesforce Id kept in Gainsight); then its match keys link
//! records that agree on a normalised value. A record with two or more candidates, or a candidate
//! two records claim, is ambiguous and left alone. What has no twin is created where the job
//! creates, and a pair whose mapped values differ gets the updates the fields' directions and
//! conflict rules decide.

use std::collections::HashMap;

use serde_json::Value;

use super::change::GAINSIGHT_MODIFIED;
use super::job::{DataFlow, MatchKey, Normalize, OnCreated};
use super::schema::Schemas;
use super::{Fields, Job, System};

mod draft;
mod rows;
mod side;
pub mod steps;
pub mod table;
pub mod validate;

pub use rows::PlanRows;
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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LinkedBy {
    /// The ledger had them.
    Ledger,
    /// One names the other in an identifier field (`Gsid = Gainsight_Company_Id__c`).
    Identifier(String),
    /// They agree on a match key (`Domain ~ Website`).
    MatchKey(String),
}

/// What the load does with one record or pair.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldUpdate {
    pub target: System,
    pub field: String,
    pub value: Value,
    pub was: Value,
}

/// One row of the plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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
pub fn counts<R: std::borrow::Borrow<PlanRow>>(rows: impl IntoIterator<Item = R>) -> Counts {
    let mut c = Counts::default();
    for row in rows {
        let row = row.borrow();
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
    plan_keeping_rows(job, snapshot, from).0.iter().collect()
}

/// The plan (`plan`), its rows in a scratch file, and where each record is in its side's
/// table, by id: a load carries its writes' records from there without reading every record
/// again.
pub fn plan_keeping_rows(
    job: &Job,
    snapshot: &Snapshot,
    from: Option<System>,
) -> (PlanRows, steps::RecordRows) {
    let gs = Side::new(&snapshot.gainsight, &job.gainsight.id_field, &[]);
    let sf = Side::new(
        &snapshot.salesforce,
        &job.salesforce.id_field,
        &salesforce_keys(job),
    );
    let mut drafts = draft::Drafts::with_capacity(gs.ids.len() + sf.ids.len());
    let mut claims = draft::Claims::new(sf.table.len());
    for at in gs.ids.in_order() {
        let values = gs.table.row(at);
        let record = |field: &str| values.as_ref().and_then(|r| r.get(field));
        let Some(gsid) = record(&job.gainsight.id_field).and_then(text) else {
            continue;
        };
        let matched = match_gainsight(job, snapshot, (&gsid, &record), &sf);
        let row = drafts.push(Some(at), matched, &sf);
        if let Some(draft::Twin::Row(twin)) = drafts.rows[row].salesforce {
            claims.claim(twin as usize, row);
        }
    }
    drafts.settle_claims(&claims, (&gs, &sf));
    drop(claims);
    let creates = job.events.from_salesforce.on_created != OnCreated::DoNothing;
    drafts.add_salesforce_only(creates, (&gs, &sf));
    let mut rows = PlanRows::default();
    for draft in &drafts.rows {
        rows.push(&settled(job, snapshot, from, (&drafts, draft), (&gs, &sf)));
    }
    let found = steps::RecordRows {
        gainsight: gs.ids,
        salesforce: sf.ids,
    };
    (rows, found)
}

/// The full row of `draft`: its ids, a pair's updates, narrowed to what a load writing only
/// from `from` writes, and why the target would refuse its write.
fn settled(
    job: &Job,
    snapshot: &Snapshot,
    from: Option<System>,
    (drafts, draft): (&draft::Drafts, &draft::Draft),
    (gs, sf): (&Side, &Side),
) -> PlanRow {
    let gainsight = draft.gainsight.and_then(|g| gs.table.fields(g as usize));
    let salesforce = match draft.salesforce {
        Some(draft::Twin::Row(at)) => sf.table.fields(at as usize),
        _ => None,
    };
    let mut row = PlanRow {
        gsid: (gainsight.as_ref()).and_then(|g| g.get(&job.gainsight.id_field).and_then(text)),
        salesforce_id: drafts.salesforce_id(draft, sf, salesforce.as_ref()),
        action: drafts.action(draft),
        updates: Vec::new(),
        refused: None,
    };
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
        only_from(&mut row, from);
    }
    row.refused = validate::refusal(job, &snapshot.schemas, &row, &records);
    row
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
