//! What an operator may ask the resync function for, checked before anything is read: exactly one
//! selection (ids, a ledger status, a time, everything, a run's failures, or a job's first load)
//! and, for a large selection, where the previous invocation stopped.

use serde::{Deserialize, Serialize};
use shared::domain::{RunId, SyncStatus, System};

/// The payload: `{"job", "ids": [...]}`, `{"job", "status": "error"}`, `{"job", "since": "<RFC
/// 3339>"}`, `{"job", "all": true}`, `{"run": "<run id>"}` or `{"job", "load": "run"|"cancel"}`
/// (a first load: each invocation plans it or applies its next chunk); `from` picks the system
/// `since` and `all` read (default Gainsight), and for a load the only side it writes from
/// (default both); `continuation` is what the previous answer handed back.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResyncRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SyncStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadCommand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<System>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Continuation>,
}

/// What to do with a job's first load.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LoadCommand {
    /// Plan a load if none is in progress, else apply its next chunk.
    Run,
    /// Stop the load in progress; the chunks not applied never will be.
    Cancel,
}

/// Where the previous invocation of a large resync stopped.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Continuation {
    /// ids: how many were done. status: ignored.
    #[serde(default)]
    pub offset: usize,
    /// status: the last ledger key done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_key: Option<String>,
    /// since/all: the modified time of the last record done, and how many records at exactly
    /// that time were done (the next page skips them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<i64>,
    #[serde(default)]
    pub done_at_ms: usize,
    /// The run of the resync's first page, which every page continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
}

/// What to resync, once the request is checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Selection {
    /// These records; a linked pair is read from `source` (its GSID's record in Gainsight, its
    /// Salesforce record in Salesforce).
    Ids {
        ids: Vec<String>,
        source: System,
    },
    Status(SyncStatus),
    /// Records modified in `source` at or after the instant (epoch ms); `all` is since 0.
    Since {
        source: System,
        since_ms: i64,
    },
    Run(RunId),
    Load(LoadCommand),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RequestError {
    #[error("say what to resync: one of ids, status, since, all, run or load (e.g. {{\"job\": \"company_account\", \"status\": \"error\"}})")]
    NothingChosen,
    #[error("choose one of ids, status, since, all, run or load, not {0}")]
    TooMany(String),
    #[error("{0} needs a job (e.g. \"job\": \"company_account\")")]
    NoJob(&'static str),
    #[error("ids is empty: list the Gainsight or Salesforce ids to resync")]
    NoIds,
    #[error("since {0:?} is not an RFC 3339 time such as 2026-11-25T08:00:00Z")]
    BadSince(String),
    #[error("all must be true when given")]
    AllFalse,
    #[error(transparent)]
    BadRun(#[from] shared::domain::run::BadRunId),
}

impl ResyncRequest {
    /// The selection asked for, or what is wrong with the request.
    pub fn selection(&self) -> Result<Selection, RequestError> {
        let given: Vec<&str> = [
            ("ids", self.ids.is_some()),
            ("status", self.status.is_some()),
            ("since", self.since.is_some()),
            ("all", self.all.is_some()),
            ("run", self.run.is_some()),
            ("load", self.load.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        match given.as_slice() {
            [] => return Err(RequestError::NothingChosen),
            [_] => {}
            many => return Err(RequestError::TooMany(many.join(" and "))),
        }
        if let Some(run) = &self.run {
            return Ok(Selection::Run(run.parse()?));
        }
        if self.job.is_none() {
            return Err(RequestError::NoJob(given[0]));
        }
        if let Some(command) = self.load {
            return Ok(Selection::Load(command));
        }
        let source = self.from.unwrap_or(System::Gainsight);
        match (&self.ids, self.status, &self.since, self.all) {
            (Some(ids), ..) if ids.is_empty() => Err(RequestError::NoIds),
            (Some(ids), ..) => Ok(Selection::Ids {
                ids: ids.clone(),
                source,
            }),
            (_, Some(status), ..) => Ok(Selection::Status(status)),
            (_, _, Some(since), _) => shared::time::parse_ms(since)
                .map(|since_ms| Selection::Since { source, since_ms })
                .ok_or_else(|| RequestError::BadSince(since.clone())),
            (.., Some(true)) => Ok(Selection::Since {
                source,
                since_ms: 0,
            }),
            _ => Err(RequestError::AllFalse),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Selection, String> {
        let request: ResyncRequest = serde_json::from_str(json).map_err(|e| e.to_string())?;
        request.selection().map_err(|e| e.to_string())
    }

    #[test]
    fn each_selection_parses() {
        assert_eq!(
            parse(r#"{"job": "j", "ids": ["G1", "001A"]}"#),
            Ok(Selection::Ids {
                ids: vec!["G1".into(), "001A".into()],
                source: System::Gainsight
            })
        );
        assert_eq!(
            parse(r#"{"job": "j", "status": "error"}"#),
            Ok(Selection::Status(SyncStatus::Error))
        );
        assert_eq!(
            parse(r#"{"job": "j", "since": "2023-11-14T22:13:20Z", "from": "salesforce"}"#),
            Ok(Selection::Since {
                source: System::Salesforce,
                since_ms: 1_700_000_000_000
            })
        );
        assert_eq!(
            parse(r#"{"job": "j", "all": true}"#),
            Ok(Selection::Since {
                source: System::Gainsight,
                since_ms: 0
            })
        );
        assert_eq!(
            parse(r#"{"job": "j", "load": "cancel"}"#),
            Ok(Selection::Load(LoadCommand::Cancel))
        );
        assert!(matches!(
            parse(r#"{"run": "1764113894123-mapper-a3f9c2"}"#),
            Ok(Selection::Run(_))
        ));
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let cases = [
            (r#"{"job": "j"}"#, "say what to resync"),
            (
                r#"{"job": "j", "ids": ["A"], "all": true}"#,
                "not ids and all",
            ),
            (r#"{"status": "error"}"#, "status needs a job"),
            (r#"{"job": "j", "ids": []}"#, "ids is empty"),
            (
                r#"{"job": "j", "since": "yesterday"}"#,
                "not an RFC 3339 time",
            ),
            (r#"{"job": "j", "all": false}"#, "all must be true"),
            (r#"{"load": "run"}"#, "load needs a job"),
            (r#"{"job": "j", "load": "go"}"#, "unknown variant `go`"),
            (
                r#"{"job": "j", "load": "run", "all": true}"#,
                "not all and load",
            ),
            (r#"{"run": "last-one"}"#, "is not a run id"),
            (
                r#"{"job": "j", "status": "broken"}"#,
                "unknown variant `broken`",
            ),
            (
                r#"{"job": "j", "gainsightIds": ["G"]}"#,
                "unknown field `gainsightIds`",
            ),
        ];
        for (json, expected) in cases {
            let err = parse(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }
}
