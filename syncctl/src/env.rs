//! What every command reads from the environment (the same variables the functions read), the
//! clients built from it, and the kinds of failure that choose the exit code.

use shared::adapters::dynamo::DynamoStateStore;
use shared::adapters::{aws_config, AwsClients};
use shared::config::{optional, required, AwsResources};
use shared::domain::{Job, Jobs};

/// Bad input: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Nothing has that id: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

pub fn not_found(message: impl Into<String>) -> anyhow::Error {
    NotFound(message.into()).into()
}

/// The AWS clients, the table and the jobs.
pub struct Env {
    pub clients: AwsClients,
    pub resources: AwsResources,
    pub jobs: Jobs,
    pub sdk: aws_config::SdkConfig,
}

impl Env {
    pub async fn load() -> anyhow::Result<Self> {
        let resources = AwsResources {
            table_name: required("TABLE_NAME")?,
            kms_key_id: optional("KMS_KEY_ID").unwrap_or_default(),
            // Not used by syncctl: it never sends changes itself.
            changes_queue_url: optional("CHANGES_QUEUE_URL").unwrap_or_default(),
            writes_queue_url: optional("WRITES_QUEUE_URL").unwrap_or_default(),
            run_ttl_days: shared::config::parsed(
                "RUN_TTL_DAYS",
                shared::config::DEFAULT_RUN_TTL_DAYS,
            )?,
        };
        let sdk = aws_config().await;
        Ok(Self {
            clients: AwsClients::new(&sdk),
            resources,
            jobs: shared::config::jobs()?,
            sdk,
        })
    }

    pub fn store(&self) -> DynamoStateStore {
        self.clients.state_store(&self.resources)
    }

    /// The named job, or a usage error listing the known ones.
    pub fn job(&self, name: &str) -> anyhow::Result<&Job> {
        self.jobs.named(name).map_err(|e| usage(e.to_string()))
    }

    /// The named job, or every job.
    pub fn jobs_or_all(&self, name: Option<&str>) -> anyhow::Result<Vec<&Job>> {
        match name {
            Some(n) => Ok(vec![self.job(n)?]),
            None => Ok(self.jobs.iter().collect()),
        }
    }
}

/// An instant given as RFC 3339 (or a date), or as a duration ago: `90m`, `24h`, `7d`.
pub fn parse_when(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    if let Some(ms) = shared::time::parse_ms(text) {
        return Ok(ms);
    }
    parse_ago(text)
        .map(|ago| now_ms - ago)
        .ok_or_else(|| usage(format!("{text:?} is neither an RFC 3339 time (2026-11-25T08:00:00Z) nor a duration such as 90m, 24h or 7d")))
}

/// `90m`, `24h`, `7d` in milliseconds.
pub fn parse_ago(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let ms = match unit {
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    (n >= 0).then_some(n * ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_durations() {
        assert_eq!(
            parse_when("24h", 100_000_000).unwrap(),
            100_000_000 - 86_400_000
        );
        assert_eq!(
            parse_when("90m", 10_000_000).unwrap(),
            10_000_000 - 5_400_000
        );
        assert_eq!(
            parse_when("2023-11-14T22:13:20Z", 0).unwrap(),
            1_700_000_000_000
        );
        let err = parse_when("yesterday", 0).unwrap_err();
        assert!(err.is::<Usage>() && err.to_string().contains("90m, 24h or 7d"));
        assert!(parse_ago("-1d").is_none());
    }
}
