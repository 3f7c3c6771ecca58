//! One side's records as a first load holds them: the field names once, and each record as its
//! values in that order. A record read as a map of its own (`Fields`) carries every field name
//! and a map node sized for eleven entries, several times the size of its values; a load holds
//! every record of both sides, so it keeps them in this form and makes a map of one record only
//! while it compares or writes it.

use serde_json::Value;

use crate::domain::Fields;

/// Records of one object with the fields they were read with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    columns: Vec<String>,
    /// Each record's values by column; `None` where the record had no such field (a record
    /// read before a column was added is shorter than the columns).
    rows: Vec<Box<[Option<Value>]>>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds `record`, its fields not seen before becoming columns.
    pub fn push(&mut self, mut record: Fields) {
        for name in record.keys() {
            if !self.columns.contains(name) {
                self.columns.push(name.clone());
            }
        }
        let values: Box<[Option<Value>]> = (self.columns.iter())
            .map(|name| record.remove(name))
            .collect();
        self.rows.push(values);
    }

    /// The value of `field` in record `row`.
    pub fn get(&self, row: usize, field: &str) -> Option<&Value> {
        let column = self.columns.iter().position(|c| c == field)?;
        self.rows.get(row)?.get(column)?.as_ref()
    }

    /// Record `row` as a map of its fields.
    pub fn fields(&self, row: usize) -> Option<Fields> {
        let values = self.rows.get(row)?;
        Some(
            (self.columns.iter().zip(values.iter()))
                .filter_map(|(name, value)| Some((name.clone(), value.clone()?)))
                .collect(),
        )
    }

    /// Record `row` as a map of its fields, its values moved out: the table keeps an empty
    /// record in its place, so a load that hands its records on does not hold them twice.
    pub fn take(&mut self, row: usize) -> Option<Fields> {
        let values = std::mem::take(self.rows.get_mut(row)?);
        Some(
            (self.columns.iter().zip(values.into_vec()))
                .filter_map(|(name, value)| Some((name.clone(), value?)))
                .collect(),
        )
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
            rec(json!({"Id": "2", "Website": "b.io", "Name": null})),
            rec(json!({"Id": "3"})),
        ];
        let mut table = Table::from(records.clone());
        assert_eq!(table.len(), 3);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(table.fields(i).as_ref(), Some(record), "record {i}");
        }
        assert_eq!(table.get(0, "Website"), None, "read before the column was");
        assert_eq!(table.get(1, "Name"), Some(&Value::Null), "null is kept");
        assert_eq!(table.get(2, "Name"), None, "absent is not null");
        assert_eq!(table.get(1, "Website"), Some(&json!("b.io")));
        assert_eq!(table.fields(3), None);

        assert_eq!(table.take(1).as_ref(), Some(&records[1]));
        assert_eq!(table.fields(1), Some(Fields::new()), "moved out");
        assert_eq!(table.get(1, "Id"), None);
        assert_eq!(table.fields(0).as_ref(), Some(&records[0]), "others stay");
    }
}
