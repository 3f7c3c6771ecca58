//! A plan's rows kept in a scratch file as they are settled, and read back in order: a million
//! rows with their ids, updates and reasons took hundreds of megabytes in memory, and each use
//! of them (counts, steps, the run's log, the printed plan) goes through them in order.

use super::PlanRow;
use crate::scratch::Scratch;

/// The rows of a plan, in order.
#[derive(Debug, Default)]
pub struct PlanRows {
    store: Scratch,
    /// Where each row ends in the store.
    ends: Vec<u64>,
}

impl PlanRows {
    /// Adds `row` at the end.
    pub fn push(&mut self, row: &PlanRow) {
        // A row is plain data: it always serializes.
        let bytes = serde_json::to_vec(row).unwrap_or_default();
        let end = self.store.append(&bytes);
        self.ends.push(end);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Row `i`, read back.
    pub fn get(&self, i: usize) -> Option<PlanRow> {
        let end = *self.ends.get(i)?;
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p]);
        serde_json::from_slice(&self.store.read(start, end)).ok()
    }

    /// Every row, in order, read back one at a time.
    pub fn iter(&self) -> impl Iterator<Item = PlanRow> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl From<Vec<PlanRow>> for PlanRows {
    fn from(rows: Vec<PlanRow>) -> Self {
        let mut out = PlanRows::default();
        for row in &rows {
            out.push(row);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::first_load::{Action, FieldUpdate, LinkedBy};
    use crate::domain::System;
    use serde_json::json;

    #[test]
    fn rows_come_back_in_order_as_they_went_in() {
        let rows = vec![
            PlanRow {
                gsid: Some("G1".into()),
                salesforce_id: Some("S1".into()),
                action: Action::Pair(LinkedBy::Identifier("identifier Gsid = X".into())),
                updates: vec![FieldUpdate {
                    target: System::Salesforce,
                    field: "Name".into(),
                    value: json!("A"),
                    was: json!(null),
                }],
                refused: Some("too long".into()),
            },
            PlanRow {
                gsid: None,
                salesforce_id: Some("S2".into()),
                action: Action::Ambiguous {
                    candidates: vec!["G2".into(), "G3".into()],
                    why: "two".into(),
                },
                updates: Vec::new(),
                refused: None,
            },
        ];
        let stored = PlanRows::from(rows.clone());
        assert_eq!(stored.len(), 2);
        assert_eq!(stored.iter().collect::<Vec<_>>(), rows);
        assert_eq!(stored.get(2), None);
    }
}
