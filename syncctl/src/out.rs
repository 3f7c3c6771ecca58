//! Printing results: the same rows as a table for people, or as JSON or CSV for scripts.

use std::io::Write;

/// `println!` that returns the error instead of panicking when standard output is closed
/// (`syncctl runs | head`); `main` ends quietly on a broken pipe.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ColumnConstraint, ContentArrangement, Table};
use serde::Serialize;

use crate::cli::Format;

/// The width tables wrap at when the output is not a terminal.
const WIDTH: u16 = 150;

/// Rows with their column names; `json` is what `--format json` prints (the full objects).
pub struct Rows {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// The one column long text may wrap in (messages); the others keep their width.
    wrap: Option<usize>,
}

impl Rows {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
            wrap: None,
        }
    }

    /// Lets the last column (a message) wrap; ids and times never do.
    pub fn wrapping_last(mut self) -> Self {
        self.wrap = self.headers.len().checked_sub(1);
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// A table for a terminal.
    pub fn table(&self) -> String {
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if table.width().is_none() {
            // Not a terminal (a pipe, a file): wrap long messages at a readable width anyway.
            table.set_width(WIDTH);
        }
        if self.headers.iter().any(|h| !h.is_empty()) {
            table.set_header(self.headers.clone());
        }
        for row in &self.rows {
            table.add_row(row.iter().map(|cell| printable(cell)));
        }
        let keep = ColumnConstraint::ContentWidth;
        for (i, column) in table.column_iter_mut().enumerate() {
            if Some(i) != self.wrap {
                column.set_constraint(keep);
            }
        }
        table.to_string()
    }

    pub fn csv(&self) -> anyhow::Result<String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&self.headers)?;
        for row in &self.rows {
            writer.write_record(row.iter().map(|cell| csv_cell(cell).into_owned()))?;
        }
        Ok(String::from_utf8(writer.into_inner()?)?)
    }
}

/// A record's text as a CSV cell a spreadsheet will not run: text starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return is a formula to Excel and its kin, so it is prefixed with `'`
/// (a number, negative ones included, is left as it is).
pub fn csv_cell(text: &str) -> std::borrow::Cow<'_, str> {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula && text.parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A record's text as a table cell a terminal only prints: control characters (an escape
/// sequence could move the cursor or rewrite what was printed) are shown as `\u{..}`; line
/// breaks stay.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return std::borrow::Cow::Borrowed(text);
    }
    let shown = text.chars().map(|c| match c {
        '\n' => c.to_string(),
        c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
        c => c.to_string(),
    });
    std::borrow::Cow::Owned(shown.collect())
}

/// Prints `rows` in `format`; JSON prints `json` instead, pretty.
pub fn print<T: Serialize + ?Sized>(format: Format, rows: &Rows, json: &T) -> anyhow::Result<()> {
    let text = match format {
        Format::Table => rows.table(),
        Format::Csv => rows.csv()?,
        Format::Json => serde_json::to_string_pretty(json)?,
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", text.trim_end())?;
    Ok(())
}

/// An epoch-ms instant as RFC 3339, or `-`.
pub fn when(ms: Option<i64>) -> String {
    ms.map(shared::time::rfc3339).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_text_cannot_become_a_formula_or_a_terminal_escape() {
        let mut rows = Rows::new(&["id", "name"]);
        for name in [
            "=HYPERLINK(\"http://x\")",
            "+1+1",
            "@SUM(A1)",
            "-2+3",
            "\tx",
            "-12.5",
            "Acme",
        ] {
            rows.push(vec!["G1".into(), name.into()]);
        }
        let csv = rows.csv().unwrap();
        let names: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| l.split_once(',').unwrap().1)
            .collect();
        assert_eq!(
            names,
            [
                "\"'=HYPERLINK(\"\"http://x\"\")\"",
                "'+1+1",
                "'@SUM(A1)",
                "'-2+3",
                "'\tx",
                "-12.5",
                "Acme"
            ]
        );
        let mut rows = Rows::new(&["name"]);
        rows.push(vec!["Evil\u{1b}[2J Co\r".into()]);
        let table = rows.table();
        assert!(
            !table.contains('\u{1b}') && !table.contains('\r'),
            "{table:?}"
        );
        assert!(table.contains("Evil\\u{1b}[2J Co\\u{d}"), "{table}");
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut rows = Rows::new(&["id", "message"]);
        rows.push(vec!["G1".into(), "a, \"b\"".into()]);
        assert_eq!(rows.csv().unwrap(), "id,message\nG1,\"a, \"\"b\"\"\"\n");
    }
}
