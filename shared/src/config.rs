//! Typed configuration from the environment, read once per cold start; a missing or malformed
//! variable fails fast with its name.

use std::path::PathBuf;

use crate::domain::{JobError, Jobs};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {message}")]
    Invalid { name: &'static str, message: String },
    #[error(transparent)]
    Jobs(#[from] JobError),
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name)),
    }
}

pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            message: e.to_string(),
        }),
    }
}

/// Deliveries of a message before SQS moves it to the dead-letter queue when the template does
/// not say (its queues' `maxReceiveCount`).
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

/// A queue's deliveries before its dead-letter queue, from `name` (the template passes the
/// queue's `maxReceiveCount`), or [`DEFAULT_MAX_RECEIVES`].
pub fn max_receives(name: &'static str) -> Result<u32, ConfigError> {
    match optional(name) {
        None => Ok(DEFAULT_MAX_RECEIVES),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError::Invalid {
                name,
                message: format!("{v:?} is not a positive whole number"),
            }),
    }
}

/// Jobs from `JOBS_DIR` when set, else the jobs compiled in from `infra/jobs/`.
pub fn jobs() -> Result<Jobs, ConfigError> {
    match optional("JOBS_DIR") {
        Some(dir) => Ok(Jobs::load_dir(&PathBuf::from(dir))?),
        None => Ok(Jobs::builtin()),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalesforceSettings {
    /// OAuth host, e.g. `https://login.salesforce.com` or `https://test.salesforce.com`.
    pub login_url: String,
    pub client_id: String,
    /// e.g. `62.0`.
    pub api_version: String,
    /// The OAuth grant the Connected App uses.
    pub auth: AuthFlow,
}

/// The OAuth grant of the Connected App (`SALESFORCE_AUTH_FLOW`), and what each needs besides
/// its secret: the JWT bearer flow names the user it runs as (`SALESFORCE_USERNAME`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AuthFlow {
    /// `client_credentials` (the default): secret `salesforce-client-secret`.
    #[default]
    ClientCredentials,
    /// `jwt_bearer`: secret `salesforce-jwt-key` (the app's private key, PEM).
    JwtBearer { username: String },
    /// `refresh_token`: secrets `salesforce-client-secret` and `salesforce-refresh-token`.
    RefreshToken,
}

impl AuthFlow {
    pub fn from_env() -> Result<Self, ConfigError> {
        let name = "SALESFORCE_AUTH_FLOW";
        match optional(name).as_deref().map(str::trim) {
            None | Some("client_credentials") => Ok(AuthFlow::ClientCredentials),
            Some("jwt_bearer") => Ok(AuthFlow::JwtBearer {
                username: required("SALESFORCE_USERNAME")?,
            }),
            Some("refresh_token") => Ok(AuthFlow::RefreshToken),
            Some(other) => Err(ConfigError::Invalid {
                name,
                message: format!(
                    "{other:?} is not a flow: use client_credentials, jwt_bearer or refresh_token"
                ),
            }),
        }
    }
}

impl SalesforceSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            login_url: required("SALESFORCE_LOGIN_URL")?,
            client_id: required("SALESFORCE_CLIENT_ID")?,
            api_version: optional("SALESFORCE_API_VERSION").unwrap_or_else(|| "62.0".into()),
            auth: AuthFlow::from_env()?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GainsightSettings {
    /// Tenant API domain, e.g. `https://acme.gainsightcloud.com`.
    pub base_url: String,
}

impl GainsightSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: required("GAINSIGHT_BASE_URL")?,
        })
    }
}

/// AWS resources every function uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsResources {
    pub table_name: String,
    pub kms_key_id: String,
    pub changes_queue_url: String,
    pub writes_queue_url: String,
    /// How long runs are kept after they end (`RUN_TTL_DAYS`, 30 by default).
    pub run_ttl_days: i64,
}

/// Runs are kept this many days unless `RUN_TTL_DAYS` says otherwise.
pub const DEFAULT_RUN_TTL_DAYS: i64 = 30;

impl AwsResources {
    /// The environment variables `from_env` reads, e.g. to start a function binary.
    pub fn env(&self) -> [(&'static str, String); 5] {
        [
            ("TABLE_NAME", self.table_name.clone()),
            ("KMS_KEY_ID", self.kms_key_id.clone()),
            ("CHANGES_QUEUE_URL", self.changes_queue_url.clone()),
            ("WRITES_QUEUE_URL", self.writes_queue_url.clone()),
            ("RUN_TTL_DAYS", self.run_ttl_days.to_string()),
        ]
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            kms_key_id: required("KMS_KEY_ID")?,
            changes_queue_url: required("CHANGES_QUEUE_URL")?,
            writes_queue_url: required("WRITES_QUEUE_URL")?,
            run_ttl_days: parsed("RUN_TTL_DAYS", DEFAULT_RUN_TTL_DAYS)?,
        })
    }
}

/// Configuration of the functions that call both systems (mapper, pusher).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    pub aws: AwsResources,
    pub salesforce: SalesforceSettings,
    pub gainsight: GainsightSettings,
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsResources::from_env()?,
            salesforce: SalesforceSettings::from_env()?,
            gainsight: GainsightSettings::from_env()?,
        })
    }
}

/// Configuration of the functions that read Gainsight and queue changes (poller, resync).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceConfig {
    pub aws: AwsResources,
    pub gainsight: GainsightSettings,
}

impl SourceConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsResources::from_env()?,
            gainsight: GainsightSettings::from_env()?,
        })
    }
}

/// What a function reading both systems needs (poller, resync): the source settings and the
/// Salesforce org.
#[derive(Clone, Debug)]
pub struct ReadConfig {
    pub source: SourceConfig,
    pub salesforce: SalesforceSettings,
}

impl ReadConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            source: SourceConfig::from_env()?,
            salesforce: SalesforceSettings::from_env()?,
        })
    }
}
