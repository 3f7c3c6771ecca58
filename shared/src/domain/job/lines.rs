//! Where an error's field path is in the job's YAML file, so every error names its line.

use super::Job;

impl Job {
    /// Prefixes each `path: message` error with the line of `path` in the job's file.
    pub(super) fn with_lines(&self, errors: Vec<String>) -> String {
        errors
            .into_iter()
            .map(|e| {
                let path = e.split(": ").next().unwrap_or_default();
                match yaml_line(&self.text, path) {
                    Some(line) => format!("line {line}: {e}"),
                    None => e,
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The 1-based line of a field path such as `fields[2].salesforce` or
/// `derived[0].lookup.match[0].field` in a job file, written in block or flow style. Finds the
/// deepest part of the path it can; `None` if not even the first key is there.
pub(super) fn yaml_line(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let is_key = |l: &str, key: &str| {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        t.starts_with(&format!("{key}:"))
            || l.contains(&format!("{{ {key}:"))
            || l.contains(&format!(", {key}:"))
            || l.contains(&format!("{{{key}:"))
    };
    let (mut from, mut to, mut found) = (0usize, lines.len(), None);
    for segment in path.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let at = (from..to).find(|&i| is_key(lines[i], key))?;
        found = Some(at + 1);
        // A flow-style line holds the rest of the path: it is the answer.
        if lines[at].contains('{') || lines[at].contains('[') && index.is_none() {
            return found;
        }
        let base = indent(lines[at]);
        let end = (at + 1..to)
            .find(|&i| {
                !lines[i].trim().is_empty()
                    && indent(lines[i]) <= base
                    && !lines[i].trim_start().starts_with("- ")
            })
            .unwrap_or(to);
        let (mut start, mut stop) = (at + 1, end);
        if let Some(n) = index {
            let items: Vec<usize> = (at + 1..end)
                .filter(|&i| lines[i].trim_start().starts_with("- "))
                .collect();
            let Some(&item) = items.get(n) else {
                return found;
            };
            found = Some(item + 1);
            if lines[item].contains('{') {
                return found;
            }
            start = item;
            stop = items.get(n + 1).copied().unwrap_or(end);
        }
        from = start;
        to = stop;
    }
    found
}
