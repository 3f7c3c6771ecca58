//! One side of a first load as the plan looks into it: its records by id, and indexes of the
//! fields the other side's records are matched on. Both hold a hash and a row per record, the
//! ids and values themselves staying in the side's table, so that a million records cost 16
//! bytes each per index (maps of ids to rows took about 90).

use serde_json::Value;

use super::{text, Form, Table};

/// The hash a key or id is indexed by.
fn hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// The rows whose key hashes as `key` does, in a sorted `(hash, row)` list.
fn hashed<'a>(entries: &'a [(u64, u32)], key: &str) -> impl Iterator<Item = usize> + 'a {
    let hash = hash(key);
    let start = entries.partition_point(|(h, _)| *h < hash);
    (entries[start..].iter())
        .take_while(move |(h, _)| *h == hash)
        .map(|(_, row)| *row as usize)
}

/// The records holding each key of one field: `(hash of the key, row)`, sorted. A hash names
/// the candidates, each then checked against its record.
#[derive(Default)]
pub(super) struct KeyIndex(Vec<(u64, u32)>);

impl KeyIndex {
    /// The rows whose key may be `key`.
    fn candidates(&self, key: &str) -> impl Iterator<Item = usize> + '_ {
        hashed(&self.0, key)
    }
}

/// Each record's row by its id. Where two rows hold one id, the later one stands for it (as
/// the later read of a record is the newer).
pub struct IdIndex {
    id_field: String,
    /// `(hash of the id, row)` of the rows that stand for their ids, sorted.
    entries: Vec<(u64, u32)>,
    /// Those rows in the order of their ids.
    order: Vec<u32>,
}

impl IdIndex {
    /// Reads each record's id once; the ids are held only while they are sorted.
    fn new(table: &Table, id_field: &str) -> Self {
        let mut ids: Vec<(String, u32)> = (0..table.len())
            .filter_map(|at| Some((table.get(at, id_field).as_ref().and_then(text)?, at as u32)))
            .collect();
        ids.sort_unstable();
        let (mut order, mut entries) =
            (Vec::with_capacity(ids.len()), Vec::with_capacity(ids.len()));
        for (i, (id, at)) in ids.iter().enumerate() {
            // Sorted by id, then row: the last row of an id stands for it.
            if ids.get(i + 1).is_some_and(|next| next.0 == *id) {
                continue;
            }
            order.push(*at);
            entries.push((hash(id), *at));
        }
        drop(ids);
        entries.sort_unstable();
        IdIndex {
            id_field: id_field.to_string(),
            entries,
            order,
        }
    }

    /// The field the ids are read from.
    pub fn id_field(&self) -> &str {
        &self.id_field
    }

    /// How many distinct ids.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The rows standing for their ids, in the order of the ids.
    pub fn in_order(&self) -> impl Iterator<Item = usize> + '_ {
        self.order.iter().map(|at| *at as usize)
    }

    /// The row standing for `id` in `table`, checked against the record.
    pub fn row_of(&self, table: &Table, id: &str) -> Option<usize> {
        hashed(&self.entries, id).find(|&at| {
            table
                .get(at, &self.id_field)
                .as_ref()
                .and_then(text)
                .as_deref()
                == Some(id)
        })
    }

    /// The record standing for `id` in `table`, read once (checking it and returning it).
    pub fn record_of(&self, table: &Table, id: &str) -> Option<super::Fields> {
        hashed(&self.entries, id).find_map(|at| {
            let fields = table.fields(at)?;
            let holds = fields.get(&self.id_field).and_then(text).as_deref() == Some(id);
            holds.then_some(fields)
        })
    }

    /// Whether row `at`, whose id is `id`, is the row that stands for it.
    fn stands_for(&self, id: &str, at: usize) -> bool {
        hashed(&self.entries, id).any(|row| row == at)
    }
}

/// The records of one side by id (their rows in the side's table), and indexes of the fields
/// other records are matched on, so a million records match in one pass.
pub(super) struct Side<'a> {
    pub(super) table: &'a Table,
    pub(super) ids: IdIndex,
    indexes: std::collections::HashMap<(String, Form), KeyIndex>,
}

impl<'a> Side<'a> {
    /// Reads each record's id, and its keys of the `wanted` fields.
    pub(super) fn new(table: &'a Table, id_field: &str, wanted: &[(String, Form)]) -> Self {
        let ids = IdIndex::new(table, id_field);
        let mut indexes: std::collections::HashMap<(String, Form), KeyIndex> = (wanted.iter())
            .map(|(field, form)| ((field.clone(), *form), KeyIndex::default()))
            .collect();
        if !indexes.is_empty() {
            for at in ids.in_order() {
                let Some(record) = table.row(at) else {
                    continue;
                };
                for ((field, form), index) in &mut indexes {
                    if let Some(key) = record.get(field).and_then(|v| form.key(v)) {
                        index.0.push((hash(&key), at as u32));
                    }
                }
            }
        }
        for index in indexes.values_mut() {
            index.0.sort_unstable();
        }
        Side {
            table,
            ids,
            indexes,
        }
    }

    /// The ids of the records whose `field` holds `value`, compared in `form`, in id order.
    pub(super) fn holding(&self, field: &str, form: Form, value: &Value) -> Vec<String> {
        let Some(key) = form.key(value) else {
            return Vec::new();
        };
        let Some(index) = self.indexes.get(&(field.to_string(), form)) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = (index.candidates(&key))
            .filter_map(|at| {
                let record = self.table.row(at)?;
                let holds = record.get(field).and_then(|v| form.key(v)).as_deref() == Some(&*key);
                let id = record.get(&self.ids.id_field).and_then(text)?;
                (holds && self.ids.stands_for(&id, at)).then_some(id)
            })
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(records: Value) -> Table {
        let records = records.as_array().cloned().unwrap_or_default();
        Table::from(
            (records.into_iter())
                .filter_map(|r| r.as_object().cloned())
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn ids_stand_for_their_latest_row_and_come_in_id_order() {
        let table = table(json!([
            {"Id": "B", "Web": "x.io"},
            {"Id": "A", "Web": "y.io"},
            {"Web": "z.io"},
            {"Id": "B", "Web": "w.io"},
        ]));
        let side = Side::new(&table, "Id", &[("Web".into(), Form::Exact)]);
        assert_eq!(side.ids.len(), 2);
        assert_eq!(side.ids.in_order().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(side.ids.row_of(&table, "B"), Some(3), "the later row");
        assert_eq!(side.ids.row_of(&table, "C"), None);
        let holding = |web: &str| side.holding("Web", Form::Exact, &json!(web));
        assert!(
            holding("x.io").is_empty(),
            "B's earlier row stands for nothing"
        );
        assert_eq!(holding("w.io"), ["B"]);
        assert!(holding("z.io").is_empty(), "a record without an id");
        assert_eq!(side.ids.row_of(&table, "A"), Some(1));
        let b = side
            .ids
            .record_of(&table, "B")
            .and_then(|r| r.get("Web").cloned());
        assert_eq!(b, Some(json!("w.io")), "the later row, read once");
        assert_eq!(side.ids.record_of(&table, "C"), None);
    }
}
