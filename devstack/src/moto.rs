//! moto in server mode from the project's virtualenv, on a free 127.0.0.1 port, and the SAM
//! template deployed into it through `deploy.py` (aws-sam-translator + CloudFormation).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use tokio::process::{Child, Command};

/// Region and dummy credentials used against moto.
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";

/// Requests per caller's access key id, then per `service:Action`.
pub type Callers = std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>;

pub fn venv() -> PathBuf {
    std::env::var_os("DEVSTACK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::repo_root().join(".venv"))
}

/// A running moto_server; killed when dropped.
pub struct Moto {
    /// Held only so that dropping `Moto` kills the server (`kill_on_drop`).
    _child: Child,
    pub endpoint: String,
}

impl Moto {
    pub async fn start() -> Result<Self> {
        // moto_server with the SQS speed fixes of devstack/moto_speedups.py applied first; the
        // launcher refuses a moto version the fixes were not written for.
        let bin = venv().join("bin").join("python");
        let launcher = super::repo_root().join("devstack").join("moto_server.py");
        if !venv().join("bin").join("moto_server").exists() {
            bail!(
                "moto_server not found in {}: run `make venv` (or `make test`, which installs it) first",
                venv().display()
            );
        }
        // Take a free port from the OS, then hand it to moto; retry if someone grabbed it meanwhile.
        let mut last_words = String::new();
        for _ in 0..5 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0")?;
                l.local_addr()?.port()
            };
            // Only errors reach stderr (the launcher quiets the request log): kept in a file so
            // an early exit can say why.
            let errors = std::env::temp_dir().join(format!("devstack-moto-{port}.log"));
            let mut child = Command::new(&bin)
                .arg(&launcher)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&errors)?)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let endpoint = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            let http = reqwest::Client::new();
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait()? {
                    last_words = std::fs::read_to_string(&errors).unwrap_or_default();
                    tracing::warn!(
                        ?status,
                        port,
                        "moto_server exited early; trying another port"
                    );
                    break;
                }
                if http
                    .get(format!("{endpoint}/moto-api/"))
                    .send()
                    .await
                    .is_ok()
                {
                    return Ok(Self {
                        _child: child,
                        endpoint,
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.kill().await;
        }
        bail!(
            "moto_server did not start on 127.0.0.1{}",
            match last_words.trim() {
                "" => String::new(),
                words => format!(": {}", words.lines().last().unwrap_or(words)),
            }
        )
    }

    /// The AWS requests served since the last reset, by `service:Action` (the launcher's request
    /// log in front of moto).
    pub async fn requests(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        self.read_log("requests").await
    }

    /// Requests counted per caller (the access key id each was signed with), then by
    /// `service:Action`.
    pub async fn callers(&self) -> Result<Callers> {
        self.read_log("callers").await
    }

    /// What each caller reached within its requests: the secrets it decrypted (`secret=<name>`)
    /// and, for the webhook, the kinds of partition key it read or wrote (`EVENT#`, a secret's
    /// whole key).
    pub async fn scopes(&self) -> Result<BTreeMap<String, BTreeSet<String>>> {
        self.read_log("scopes").await
    }

    /// Turns the audit on: from now on each request is also recorded as `<action> <resource>`
    /// per caller (a transaction's items as the actions IAM authorises them as).
    pub async fn audit(&self) -> Result<()> {
        self.send_log(reqwest::Method::POST, "audit").await
    }

    /// What the audit recorded, per caller.
    pub async fn audited(&self) -> Result<BTreeMap<String, BTreeSet<String>>> {
        self.read_log("audit").await
    }

    /// Turns the write meter on: from now on each DynamoDB write's capacity units (by DynamoDB's
    /// rules, from the items it changed) are added up per caller and action (and, under
    /// `<action> (indexes)`, the part spent on index entries).
    pub async fn meter_capacity(&self) -> Result<()> {
        self.send_log(reqwest::Method::POST, "capacity").await
    }

    /// The write capacity units metered, per caller and action.
    pub async fn write_units(&self) -> Result<BTreeMap<String, BTreeMap<String, u64>>> {
        self.read_log("capacity").await
    }

    /// Starts the request log afresh (every count, scope, audit line and write unit).
    pub async fn reset_requests(&self) -> Result<()> {
        self.send_log(reqwest::Method::DELETE, "requests").await
    }

    /// One of the launcher's logs in front of moto (`/__devstack/<log>`), as JSON.
    async fn read_log<T: serde::de::DeserializeOwned>(&self, log: &str) -> Result<T> {
        let url = format!("{}/__devstack/{log}", self.endpoint);
        Ok(reqwest::get(url).await?.error_for_status()?.json().await?)
    }

    /// Turns a log on (POST) or resets them all (DELETE).
    async fn send_log(&self, method: reqwest::Method, log: &str) -> Result<()> {
        let url = format!("{}/__devstack/{log}", self.endpoint);
        reqwest::Client::new()
            .request(method, url)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Environment that points AWS SDKs (Rust, boto3, the CLI) at this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ]
    }

    /// Translates and deploys `template` as stack `stack`; returns what was created. With `sqs`,
    /// the template's queues are created there instead (same names and attributes).
    pub async fn deploy(
        &self,
        template: &Path,
        stack: &str,
        parameters: &HashMap<String, String>,
        sqs: Option<&Moto>,
    ) -> Result<Deployment> {
        let script = super::repo_root().join("devstack").join("deploy.py");
        let out = Command::new(venv().join("bin").join("python"))
            .arg(&script)
            .arg(template)
            .envs(self.env())
            .env("STACK_NAME", stack)
            .env("STACK_PARAMETERS", serde_json::to_string(parameters)?)
            .env(
                "SQS_ENDPOINT",
                sqs.map(|m| m.endpoint.clone()).unwrap_or_default(),
            )
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .await
            .context("running deploy.py")?;
        if !out.status.success() {
            bail!(
                "deploying {} into moto failed: {}",
                template.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).context("reading deploy.py output")
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct EventSourceSpec {
    pub function: String,
    pub queue: String,
    pub batch_size: usize,
    pub batching_window_seconds: u64,
    pub report_batch_item_failures: bool,
    /// Batches handled at once (the mapping's ScalingConfig.MaximumConcurrency).
    pub maximum_concurrency: usize,
}

/// What the template created in moto.
#[derive(Clone, Debug, Deserialize)]
pub struct Deployment {
    pub stack: String,
    pub outputs: HashMap<String, String>,
    pub resources: HashMap<String, Resource>,
    /// Queue names by logical id.
    pub queues: HashMap<String, String>,
    pub event_sources: Vec<EventSourceSpec>,
    /// The EventBridge schedules, for the local stack to fire.
    #[serde(default)]
    pub schedules: Vec<crate::scheduler::ScheduleSpec>,
    /// The rules routing an event bus's events to queues, for the local buses to serve.
    #[serde(default)]
    pub event_rules: Vec<crate::event_bus::EventRuleSpec>,
    /// Resources moto cannot create, left out of the local deployment.
    pub skipped: Vec<String>,
    /// Each function's timeout in seconds, by logical id.
    #[serde(default)]
    pub timeouts: HashMap<String, u64>,
    /// The reserved concurrency of the functions that have one, by logical id.
    #[serde(default)]
    pub reserved_concurrency: HashMap<String, usize>,
}

impl Deployment {
    pub fn physical_id(&self, logical: &str) -> Result<&str> {
        self.resources
            .get(logical)
            .and_then(|r| r.id.as_deref())
            .with_context(|| format!("the template created no {logical}"))
    }

    pub fn queue_name(&self, logical: &str) -> Result<&str> {
        self.queues
            .get(logical)
            .map(String::as_str)
            .with_context(|| format!("the template created no queue {logical}"))
    }

    /// How long the template lets `function` run per invocation.
    pub fn timeout(&self, function: &str) -> Result<std::time::Duration> {
        self.timeouts
            .get(function)
            .map(|s| std::time::Duration::from_secs(*s))
            .with_context(|| format!("the template has no function {function}"))
    }

    /// How many invocations of `function` may run at once, when its concurrency is reserved.
    pub fn reserved_concurrency(&self, function: &str) -> Option<usize> {
        self.reserved_concurrency.get(function).copied()
    }

    pub fn event_source(&self, function: &str) -> Result<&EventSourceSpec> {
        self.event_sources
            .iter()
            .find(|e| e.function == function)
            .with_context(|| format!("the template gives {function} no SQS event source"))
    }
}

/// moto with the template deployed and an SDK configuration pointing at it: what every test that
/// needs real AWS APIs starts from.
pub struct LocalAws {
    /// DynamoDB, KMS, CloudFormation and the rest of the template.
    pub moto: Moto,
    /// SQS in a moto of its own: the two services each get a core instead of sharing one
    /// Python interpreter lock.
    pub sqs: Moto,
    pub deployment: Deployment,
    /// SDK configuration for every service but SQS.
    pub sdk: aws_config::SdkConfig,
    /// SDK configuration for SQS.
    pub sqs_sdk: aws_config::SdkConfig,
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "devstack",
        ))
        .load()
        .await
}

impl LocalAws {
    /// Starts moto (and a second one for SQS) and deploys `infra/template.yaml` into them.
    pub async fn start() -> Result<Self> {
        Self::start_with(&HashMap::new()).await
    }

    /// Same, with the stack's `parameters`.
    pub async fn start_with(parameters: &HashMap<String, String>) -> Result<Self> {
        let (moto, sqs) = tokio::try_join!(Moto::start(), Moto::start())?;
        let template = super::repo_root().join("infra").join("template.yaml");
        let deployment = moto
            .deploy(&template, "gs-sf-sync", parameters, Some(&sqs))
            .await?;
        let sdk = sdk_config(&moto.endpoint).await;
        let sqs_sdk = sdk_config(&sqs.endpoint).await;
        Ok(Self {
            moto,
            sqs,
            deployment,
            sdk,
            sqs_sdk,
        })
    }

    /// Environment that points AWS SDKs at the local AWS: SQS at its own endpoint
    /// (`AWS_ENDPOINT_URL_SQS`), everything else at `AWS_ENDPOINT_URL`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.moto.env();
        env.push(("AWS_ENDPOINT_URL_SQS", self.sqs.endpoint.clone()));
        env
    }

    /// AWS requests served by both since the last reset, by `service:Action`.
    pub async fn requests(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        let mut all = self.moto.requests().await?;
        for (action, n) in self.sqs.requests().await? {
            *all.entry(action).or_default() += n;
        }
        Ok(all)
    }

    pub async fn reset_requests(&self) -> Result<()> {
        self.moto.reset_requests().await?;
        self.sqs.reset_requests().await
    }

    /// Both servers' requests per caller, then by `service:Action`.
    pub async fn callers(&self) -> Result<Callers> {
        let mut all = self.moto.callers().await?;
        for (caller, actions) in self.sqs.callers().await? {
            let mine = all.entry(caller).or_default();
            for (action, n) in actions {
                *mine.entry(action).or_default() += n;
            }
        }
        Ok(all)
    }

    /// Turns both servers' audit on (`Moto::audit`).
    pub async fn audit(&self) -> Result<()> {
        self.moto.audit().await?;
        self.sqs.audit().await
    }

    /// Both servers' audits, per caller.
    pub async fn audited(&self) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let mut all = self.moto.audited().await?;
        for (caller, more) in self.sqs.audited().await? {
            all.entry(caller).or_default().extend(more);
        }
        Ok(all)
    }

    /// The URL of a queue the template created, looked up by name against moto.
    pub async fn queue_url(&self, logical: &str) -> Result<String> {
        let name = self.deployment.queue_name(logical)?;
        let out = aws_sdk_sqs::Client::new(&self.sqs_sdk)
            .get_queue_url()
            .queue_name(name)
            .send()
            .await?;
        out.queue_url()
            .map(str::to_string)
            .with_context(|| format!("no URL for queue {name}"))
    }

    pub fn table_name(&self) -> Result<&str> {
        self.deployment.physical_id("StateTable")
    }

    pub fn kms_key_id(&self) -> Result<&str> {
        self.deployment.physical_id("SecretsKey")
    }

    /// Messages visible plus in flight on a queue (SQS's approximate counts; exact on moto).
    pub async fn queue_depth(&self, logical: &str) -> Result<u64> {
        let d = self.queue_depths(logical).await?;
        // Delayed messages (deferred writes, load flushes) are still to come.
        Ok(d.visible + d.in_flight + d.delayed)
    }

    /// A queue's messages by state: waiting to be received, received and not yet deleted, and
    /// sent with a delay not yet over.
    pub async fn queue_depths(&self, logical: &str) -> Result<QueueDepths> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = aws_sdk_sqs::Client::new(&self.sqs_sdk)
            .get_queue_attributes()
            .queue_url(self.queue_url(logical).await?)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .send()
            .await?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        let get = |a: A| {
            attrs
                .get(&a)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepths {
            visible: get(A::ApproximateNumberOfMessages),
            in_flight: get(A::ApproximateNumberOfMessagesNotVisible),
            delayed: get(A::ApproximateNumberOfMessagesDelayed),
        })
    }
}

/// A queue's messages by state (SQS's approximate counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepths {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}
