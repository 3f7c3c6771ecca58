//! One side's records as a first load holds them: the field names once, and each record's
//! values in order, kept in a scratch file and read back a record at a time. A load reads
//! every record of both sides (a million each, in a real org) and compares them one or two at a
//! time; held in memory as maps they took about 1 KB a record, so the table keeps in memory
//! only where each record starts, and the records in a file (`scratch`) that the operating
//! system caches as it can.

use serde_json::Value;

use crate::domain::Fields;
use crate::scratch::Scratch;

/// Records of one object with the fields they were read with.
#[derive(Debug, Default)]
pub struct Table {
    columns: Vec<String>,
    /// Each record's values by column, as JSON (see `encode`).
    store: Scratch,
    /// Where each record ends in the store.
    ends: Vec<u64>,
}

/// One record read back: its values by column (`None` where it had no such field).
pub struct Row<'t> {
    columns: &'t [String],
    values: Vec<Option<Value>>,
}

impl Row<'_> {
    /// The value of `field`.
    pub fn get(&self, field: &str) -> Option<&Value> {
        let column = self.columns.iter().position(|c| c == field)?;
        self.values.get(column)?.as_ref()
    }

    /// The record as a map of its fields.
    pub fn into_fields(self) -> Fields {
        (self.columns.iter().zip(self.values))
            .filter_map(|(name, value)| Some((name.clone(), value?)))
            .collect()
    }
}

/// A record's values as one JSON array, each value wrapped (`[v]`) and a field the record did
/// not have as `[]`, so that a null value and an absent field stay apart.
fn encode(values: &[Option<&Value>]) -> Vec<u8> {
    let wrapped: Vec<&[Value]> = (values.iter())
        .map(|v| v.map_or(&[][..], std::slice::from_ref))
        .collect();
    serde_json::to_vec(&wrapped).unwrap_or_else(|_| b"[]".to_vec())
}

fn decode(bytes: &[u8]) -> Vec<Option<Value>> {
    let wrapped: Vec<Vec<Value>> = serde_json::from_slice(bytes).unwrap_or_default();
    (wrapped.into_iter())
        .map(|mut v| (!v.is_empty()).then(|| v.swap_remove(0)))
        .collect()
}

impl Table {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Adds `record`, its fields not seen before becoming columns.
    pub fn push(&mut self, record: Fields) {
        for name in record.keys() {
            if !self.columns.contains(name) {
                self.columns.push(name.clone());
            }
        }
        let values: Vec<Option<&Value>> =
            (self.columns.iter()).map(|name| record.get(name)).collect();
        let end = self.store.append(&encode(&values));
        self.ends.push(end);
    }

    /// Record `row`, read back.
    pub fn row(&self, row: usize) -> Option<Row<'_>> {
        let end = *self.ends.get(row)?;
        let start = row.checked_sub(1).map_or(0, |r| self.ends[r]);
        Some(Row {
            columns: &self.columns,
            values: decode(&self.store.read(start, end)),
        })
    }

    /// The value of `field` in record `row`.
    pub fn get(&self, row: usize, field: &str) -> Option<Value> {
        self.row(row)?.get(field).cloned()
    }

    /// Record `row` as a map of its fields.
    pub fn fields(&self, row: usize) -> Option<Fields> {
        Some(self.row(row)?.into_fields())
    }
}

impl Extend<Fields> for Table {
    fn extend<I: IntoIterator<Item = Fields>>(&mut self, records: I) {
        for record in records {
            self.push(record);
        }
    }
}

impl From<Vec<Fields>> for Table {
    fn from(records: Vec<Fields>) -> Self {
        let mut table = Table::default();
        table.extend(records);
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Fields {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn records_come_back_as_they_went_in_whatever_fields_each_had() {
        let records = vec![
            rec(json!({"Id": "1", "Name": "A"})),
            rec(json!({"Id": "2", "Website": "b.io", "Name": null, "N": {"deep": [1, "x"]}})),
            rec(json!({"Id": "3"})),
        ];
        let table = Table::from(records.clone());
        assert_eq!(table.len(), 3);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(table.fields(i).as_ref(), Some(record), "record {i}");
        }
        assert_eq!(table.get(0, "Website"), None, "read before the column was");
        assert_eq!(table.get(1, "Name"), Some(Value::Null), "null is kept");
        assert_eq!(table.get(2, "Name"), None, "absent is not null");
        assert_eq!(table.get(1, "Website"), Some(json!("b.io")));
        assert_eq!(table.fields(3), None);
    }

    #[test]
    fn records_past_the_memory_buffer_come_back_from_the_file() {
        let mut table = Table::default();
        let n = 40_000;
        for i in 0..n {
            table.push(rec(
                json!({"Id": format!("{i:06}"), "Pad": "x".repeat(i % 300)}),
            ));
        }
        assert!(table.store.on_disk() > 0, "spilled: {:?}", table.store);
        for i in [0, 1, n / 2, n - 2, n - 1] {
            let row = table.row(i).expect("there");
            assert_eq!(row.get("Id"), Some(&json!(format!("{i:06}"))));
            assert_eq!(row.get("Pad"), Some(&json!("x".repeat(i % 300))));
        }
    }
}
