//! A plan while it is drawn: one small row per record or pair, naming records by their rows in
//! the sides' tables, with the few texts (why two records are a pair, ambiguities, ledger ids
//! the snapshot does not hold) held once beside the rows. Each row costs 24 bytes (a test says
//! so); each is made a full `PlanRow` once, when it is settled and stored.

use std::collections::BTreeMap;

use super::side::Side;
use super::{text, Action, LinkedBy, System};
use crate::domain::Fields;

/// The other side's record of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Twin {
    /// Row of the Salesforce table.
    Row(u32),
    /// An id the snapshot does not hold (a ledger pair whose record was not read), by its
    /// place in `Drafts::ids`.
    Absent(u32),
}

/// A row's action, its texts by their places in `Drafts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drafted {
    Ledger,
    Identifier(u32),
    MatchKey(u32),
    CreateInSalesforce,
    CreateInGainsight,
    NoTwin(System),
    Ambiguous(u32),
}

/// One row of the plan being drawn.
#[derive(Clone, Copy, Debug)]
pub(super) struct Draft {
    /// Row of the Gainsight table; `None` for a Salesforce record no pair holds.
    pub(super) gainsight: Option<u32>,
    /// The Salesforce record: the twin, or the row's own record when `gainsight` is `None`.
    pub(super) salesforce: Option<Twin>,
    action: Drafted,
}

/// The rows of a plan being drawn, and their texts.
#[derive(Default)]
pub(super) struct Drafts {
    pub(super) rows: Vec<Draft>,
    labels: Vec<String>,
    ids: Vec<String>,
    ambiguous: Vec<(Vec<String>, String)>,
}

/// Which plan rows claim each Salesforce record (by its row in the table): the first claim of
/// each in a flat array, the records claimed more than once (few) in a map, so a million
/// claims cost four bytes each.
pub(super) struct Claims {
    first: Vec<u32>,
    more: BTreeMap<usize, Vec<usize>>,
}

impl Claims {
    const NONE: u32 = u32::MAX;

    pub(super) fn new(records: usize) -> Self {
        Claims {
            first: vec![Self::NONE; records],
            more: BTreeMap::new(),
        }
    }

    /// Plan row `by` claims Salesforce record `record`.
    pub(super) fn claim(&mut self, record: usize, by: usize) {
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

impl Drafts {
    pub(super) fn with_capacity(n: usize) -> Self {
        Drafts {
            rows: Vec::with_capacity(n),
            ..Drafts::default()
        }
    }

    /// Adds the row of Gainsight record `gainsight` (or of a Salesforce record alone), its
    /// action and twin as matched; its place.
    pub(super) fn push(
        &mut self,
        gainsight: Option<usize>,
        (action, twin): (Action, Option<String>),
        sf: &Side,
    ) -> usize {
        let salesforce = twin.map(|id| match sf.ids.row_of(sf.table, &id) {
            Some(at) => Twin::Row(at as u32),
            None => Twin::Absent(place(&mut self.ids, id)),
        });
        let action = self.draft(action);
        self.rows.push(Draft {
            gainsight: gainsight.map(|g| g as u32),
            salesforce,
            action,
        });
        self.rows.len() - 1
    }

    fn draft(&mut self, action: Action) -> Drafted {
        match action {
            Action::Pair(LinkedBy::Ledger) => Drafted::Ledger,
            Action::Pair(LinkedBy::Identifier(by)) => {
                Drafted::Identifier(label(&mut self.labels, by))
            }
            Action::Pair(LinkedBy::MatchKey(by)) => Drafted::MatchKey(label(&mut self.labels, by)),
            Action::CreateInSalesforce => Drafted::CreateInSalesforce,
            Action::CreateInGainsight => Drafted::CreateInGainsight,
            // Drawn only for whole loads; `only_from` narrows a row once it is settled.
            Action::NoTwin(side) | Action::NotLoaded(side) => Drafted::NoTwin(side),
            Action::Ambiguous { candidates, why } => {
                self.ambiguous.push((candidates, why));
                Drafted::Ambiguous(self.ambiguous.len() as u32 - 1)
            }
        }
    }

    /// The action of `row`, in full.
    pub(super) fn action(&self, row: &Draft) -> Action {
        let text = |list: &[String], i: u32| list.get(i as usize).cloned().unwrap_or_default();
        match row.action {
            Drafted::Ledger => Action::Pair(LinkedBy::Ledger),
            Drafted::Identifier(i) => Action::Pair(LinkedBy::Identifier(text(&self.labels, i))),
            Drafted::MatchKey(i) => Action::Pair(LinkedBy::MatchKey(text(&self.labels, i))),
            Drafted::CreateInSalesforce => Action::CreateInSalesforce,
            Drafted::CreateInGainsight => Action::CreateInGainsight,
            Drafted::NoTwin(side) => Action::NoTwin(side),
            Drafted::Ambiguous(i) => {
                let (candidates, why) = self.ambiguous[i as usize].clone();
                Action::Ambiguous { candidates, why }
            }
        }
    }

    /// The Salesforce id of `row`'s record, read from its row when the snapshot holds it.
    pub(super) fn salesforce_id(
        &self,
        row: &Draft,
        sf: &Side,
        record: Option<&Fields>,
    ) -> Option<String> {
        match row.salesforce? {
            Twin::Row(_) => record?.get(sf.ids.id_field()).and_then(text),
            Twin::Absent(i) => self.ids.get(i as usize).cloned(),
        }
    }

    /// A Salesforce record claimed by two or more Gainsight records makes each of them
    /// ambiguous (the ledger's own pairs stay: they are not the load's to undo).
    pub(super) fn settle_claims(&mut self, claims: &Claims, (gs, sf): (&Side, &Side)) {
        for (&record, claimants) in &claims.more {
            let new: Vec<usize> = (claimants.iter().copied())
                .filter(|i| self.rows[*i].action != Drafted::Ledger)
                .collect();
            if claimants.len() < 2 || new.is_empty() {
                continue;
            }
            let Some(twin) = sf
                .table
                .get(record, sf.ids.id_field())
                .as_ref()
                .and_then(text)
            else {
                continue;
            };
            let gsids: Vec<String> = (claimants.iter())
                .filter_map(|i| self.rows[*i].gainsight)
                .filter_map(|g| {
                    gs.table
                        .get(g as usize, gs.ids.id_field())
                        .as_ref()
                        .and_then(text)
                })
                .collect();
            for i in new {
                let why = format!("{twin} is claimed by {}", gsids.join(", "));
                self.ambiguous.push((vec![twin.clone()], why));
                self.rows[i].action = Drafted::Ambiguous(self.ambiguous.len() as u32 - 1);
                self.rows[i].salesforce = None;
            }
        }
    }

    /// Rows for the Salesforce records no pair holds: a candidate of an ambiguous match is
    /// ambiguous too (creating its twin would make a duplicate); the rest are created in
    /// Gainsight where `creates`, left alone otherwise.
    pub(super) fn add_salesforce_only(&mut self, creates: bool, (gs, sf): (&Side, &Side)) {
        // By the record's row in the table: a million pairs in a million bytes.
        let mut paired = vec![false; sf.table.len()];
        let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in &self.rows {
            match (row.action, row.salesforce, row.gainsight) {
                (
                    Drafted::Ledger | Drafted::Identifier(_) | Drafted::MatchKey(_),
                    Some(Twin::Row(at)),
                    _,
                ) => {
                    paired[at as usize] = true;
                }
                (Drafted::Ambiguous(i), _, Some(g)) => {
                    let gsid = gs.table.get(g as usize, gs.ids.id_field());
                    let Some(gsid) = gsid.as_ref().and_then(text) else {
                        continue;
                    };
                    for c in &self.ambiguous[i as usize].0 {
                        held.entry(c.clone()).or_default().push(gsid.clone());
                    }
                }
                _ => {}
            }
        }
        for at in sf.ids.in_order().filter(|at| !paired[*at]) {
            let id = sf.table.get(at, sf.ids.id_field());
            let action = match id.as_ref().and_then(text).and_then(|id| held.get(&id)) {
                Some(gsids) => Action::Ambiguous {
                    candidates: gsids.clone(),
                    why: format!("a candidate of the ambiguous match of {}", gsids.join(", ")),
                },
                None if creates => Action::CreateInGainsight,
                None => Action::NoTwin(System::Salesforce),
            };
            let action = self.draft(action);
            self.rows.push(Draft {
                gainsight: None,
                salesforce: Some(Twin::Row(at as u32)),
                action,
            });
        }
    }
}

/// The place of `text` in `list`, added if new (a plan has a handful of labels).
fn label(list: &mut Vec<String>, text: String) -> u32 {
    match list.iter().position(|l| *l == text) {
        Some(i) => i as u32,
        None => place(list, text),
    }
}

fn place(list: &mut Vec<String>, text: String) -> u32 {
    list.push(text);
    list.len() as u32 - 1
}

#[cfg(test)]
mod tests {
    use super::Draft;

    #[test]
    fn a_drawn_row_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Draft>(), 24);
    }
}
