//! The functions running in the local stack: moto with the template deployed, the emulators, the
//! webhook behind a Function URL listener, and mapper and pusher fed by the SQS event-source
//! emulator, exactly as the template wires them. Used by the end-to-end tests, `make demo` and
//! `make up`.

pub mod activity_window;
pub mod backfill;
mod binaries;
mod consumers;
pub mod flood;
pub use consumers::function_binaries_in;
use consumers::start_consumers;
pub mod relay;
mod sources;
mod story;
pub use sources::outbound_url;
pub mod soak;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use devstack::event_source::{self, EventSource};
use devstack::gainsight::GainsightEmulator;
use devstack::lambda_api;
use devstack::moto::LocalAws;
use devstack::salesforce::{self as sf, SalesforceEmulator};
use devstack::ServerHandle;
use serde_json::{json, Value};
use shared::adapters::dynamo::DynamoStateStore;
use shared::adapters::AwsClients;
use shared::config::{ApiConfig, AwsResources, GainsightSettings, SalesforceSettings};
use shared::domain::{Jobs, LedgerRecord};
use shared::ports::{LedgerStore, Secrets};
use shared::secret::{names, Secret};

pub const GAINSIGHT_ACCESS_KEY: &str = "gs-local-access-key";
pub const WEBHOOK_SECRET: &str = "whsec-local-shared-secret";
/// The token the local Outbound Messages' endpoint URL carries (`?token=`).
pub const OUTBOUND_TOKEN: &str = "om-local-token-5f0c2a9e81d34b7c9a6e";
/// The names the local Lambda Invoke API knows the functions by (their template names).
pub const RESYNC_FUNCTION: &str = "ResyncFunction";
pub const POLLER_FUNCTION: &str = "PollerFunction";

#[derive(Clone, Debug)]
pub struct Options {
    /// Run mapper and pusher on their queues (off: messages stay queued, for inspection).
    pub consumers: bool,
    /// How soon a failed message comes back (Lambda: the visibility timeout, minutes).
    pub retry_after: Duration,
    /// The Outbound Message rule and the Gainsight rule skip the integration user's own changes,
    /// as the README has admins set them up: our writes do not come back as echoes. Off, every
    /// write echoes back and the mapper's per-field hashes must recognise it.
    pub echo_criteria: bool,
    /// Fire the template's EventBridge schedules (the poller's, one per job) this many times
    /// faster than their rates; `None`: not at all (a test polls when it wants to).
    pub schedule_speedup: Option<u32>,
    /// How long a bulk load must stop growing before the pusher writes it (a minute deployed).
    pub load_quiet: Duration,
    /// Faults of the SQS deliveries to the mapper and the pusher (soak tests); none by default.
    pub delivery_faults: event_source::DeliveryFaults,
    /// How long writes deferred by an API budget wait before they come back (deployed: 15
    /// minutes); `None`: as long as `retry_after`.
    pub deferral: Option<Duration>,
    /// The jobs the stack runs; `None`: the shipped ones (`infra/jobs`).
    pub jobs: Option<Jobs>,
    /// How Salesforce reports its changes: Outbound Messages, Change Data Capture, or both.
    pub salesforce_events: relay::SalesforceEvents,
    /// Other stack parameters the template is deployed with (name, value).
    pub parameters: Vec<(&'static str, &'static str)>,
    /// How long the pusher waits for a Bulk API job in one call, and how soon a load's slice
    /// whose job was still running is flushed again (deployed: 45 s and 30 s).
    pub bulk_wait: (Duration, Duration),
    /// Run the mapper and the pusher as their own binaries from this directory (for example
    /// `target/perf`), under the Lambda Runtime API, with their production settings (a load
    /// written after a minute's quiet, deferred writes back after 15 minutes, the shipped
    /// jobs): `load_quiet`, `deferral`, `bulk_wait` and `jobs` are then not used. `None`: in
    /// this process.
    pub function_binaries: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            consumers: true,
            retry_after: Duration::from_secs(1),
            echo_criteria: true,
            schedule_speedup: None,
            load_quiet: Duration::from_secs(2),
            delivery_faults: Default::default(),
            deferral: None,
            jobs: None,
            salesforce_events: Default::default(),
            parameters: Vec::new(),
            bulk_wait: (pusher::BULK_WAIT, pusher::BULK_RECHECK),
            function_binaries: None,
        }
    }
}

pub struct Stack {
    pub aws: LocalAws,
    pub clients: AwsClients,
    pub resources: AwsResources,
    pub store: DynamoStateStore,
    pub salesforce: SalesforceEmulator,
    pub gainsight: GainsightEmulator,
    pub jobs: Jobs,
    webhook: ServerHandle,
    lambda: ServerHandle,
    consumers: Vec<EventSource>,
    /// The mapper's and pusher's processes, when they run as binaries.
    functions: Vec<binaries::FunctionProcesses>,
    _schedules: Option<devstack::scheduler::Scheduler>,
    /// The local EventBridge, when Change Data Capture is on.
    pub buses: Option<devstack::event_bus::EventBuses>,
    /// How Salesforce reports its changes to this stack.
    pub salesforce_events: relay::SalesforceEvents,
    http: reqwest::Client,
}

/// The access key id the event source mappings sign with (Lambda's service in production).
pub const EVENT_SOURCE_CALLER: &str = "EventSourceMapping";

/// Who calls AWS in production: the functions and Lambda's event source mappings. Everything
/// else on the local AWS is the harness looking.
pub const PRODUCT_CALLERS: [&str; 7] = [
    "WebhookFunction",
    "PollerFunction",
    "MapperFunction",
    "PusherFunction",
    "ResyncFunction",
    EVENT_SOURCE_CALLER,
    relay::EVENTBRIDGE_CALLER,
];

/// The AWS clients of one function: signed with its own access key id (its template name), so
/// the local AWS can tell what each function called (`LocalAws::callers`).
pub fn clients_of(aws: &LocalAws, function: &str) -> AwsClients {
    let as_function = |sdk: &aws_config::SdkConfig| {
        let credentials = aws_sdk_sqs::config::Credentials::new(
            function,
            devstack::moto::SECRET_KEY,
            None,
            None,
            "devstack",
        );
        sdk.to_builder()
            .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .build()
    };
    AwsClients::new(&as_function(&aws.sdk)).with_sqs(&as_function(&aws.sqs_sdk))
}

/// Secrets exist only as KMS ciphertext, put through the real KMS API.
async fn put_secrets(
    clients: &AwsClients,
    resources: &AwsResources,
    salesforce: &SalesforceEmulator,
) -> Result<()> {
    let secrets = clients.secrets(resources);
    let values = [
        (
            names::GAINSIGHT_ACCESS_KEY,
            GAINSIGHT_ACCESS_KEY.to_string(),
        ),
        (names::SALESFORCE_CLIENT_SECRET, salesforce.client_secret()),
        (names::WEBHOOK_SECRET, WEBHOOK_SECRET.to_string()),
        (names::SALESFORCE_OUTBOUND_TOKEN, OUTBOUND_TOKEN.to_string()),
    ];
    for (name, value) in values {
        secrets.put(name, &Secret::new(value)).await?;
    }
    Ok(())
}

/// The webhook function behind a local Function URL.
async fn serve_webhook(
    aws: &LocalAws,
    resources: &AwsResources,
    jobs: &Jobs,
) -> Result<ServerHandle> {
    let clients = &clients_of(aws, "WebhookFunction");
    let config = webhook::Config {
        aws: resources.clone(),
        max_body_bytes: webhook::DEFAULT_MAX_BODY_BYTES,
        tolerance_s: 300,
        salesforce_org_id: Some(sf::ORGANIZATION_ID.into()),
    };
    let hook = Arc::new(webhook::Webhook::from_aws(&config, clients, jobs.clone()).await?);
    let reserved = aws.deployment.reserved_concurrency("WebhookFunction");
    let handler: devstack::function_url::Handler = Arc::new(move |request| {
        let hook = Arc::clone(&hook);
        Box::pin(async move { hook.handle(request).await })
    });
    devstack::function_url::serve_reserved(handler, reserved)
        .await
        .context("serving the webhook's Function URL")
}

/// The settings of the functions that call both systems.
fn api_config(
    resources: &AwsResources,
    (salesforce, gainsight): (&SalesforceEmulator, &GainsightEmulator),
) -> ApiConfig {
    ApiConfig {
        aws: resources.clone(),
        salesforce: SalesforceSettings {
            login_url: salesforce.url(),
            client_id: salesforce.client_id(),
            api_version: "62.0".into(),
            auth: Default::default(),
        },
        gainsight: GainsightSettings {
            base_url: gainsight.url(),
        },
    }
}

/// Wraps a handler as a function the Lambda Invoke emulator calls with JSON.
fn invocable<Req, Resp, E, F, Fut>(handle: F) -> lambda_api::Handler
where
    Req: serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize,
    E: std::fmt::Display,
    F: Fn(Req) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = std::result::Result<Resp, E>> + Send + 'static,
{
    Arc::new(move |event: Value| {
        let handle = handle.clone();
        Box::pin(async move {
            let request: Req = serde_json::from_value(event).map_err(|e| e.to_string())?;
            let answer = handle(request).await.map_err(|e| e.to_string())?;
            serde_json::to_value(answer).map_err(|e| e.to_string())
        })
    })
}

/// The functions invoked rather than triggered by a queue (resync, poller), behind the Lambda
/// Invoke API under their template names.
async fn serve_invocations(
    aws: &LocalAws,
    config: &ApiConfig,
    jobs: &Jobs,
) -> Result<ServerHandle> {
    let source = shared::config::SourceConfig {
        aws: config.aws.clone(),
        gainsight: config.gainsight.clone(),
    };
    let resync_config = resync::Config {
        source: source.clone(),
        salesforce: config.salesforce.clone(),
    };
    let resync_clients = clients_of(aws, RESYNC_FUNCTION);
    let resync = resync::Resync::from_aws(&resync_config, &resync_clients, jobs.clone()).await?;
    let resync = Arc::new(resync);
    let poller_clients = clients_of(aws, POLLER_FUNCTION);
    let poller =
        Arc::new(poller::Poller::from_aws(&resync_config, &poller_clients, jobs.clone()).await?);
    let functions = std::collections::HashMap::from([
        (
            RESYNC_FUNCTION.to_string(),
            invocable(move |r: resync::ResyncRequest| {
                let resync = Arc::clone(&resync);
                async move { resync.handle(r).await }
            }),
        ),
        (
            POLLER_FUNCTION.to_string(),
            invocable(move |r: poller::PollRequest| {
                let poller = Arc::clone(&poller);
                async move { poller.handle(r).await }
            }),
        ),
    ]);
    // Also under the names the deployed stack's outputs give (`syncctl --stack`).
    let mut functions = functions;
    for logical in [RESYNC_FUNCTION, POLLER_FUNCTION] {
        if let (Ok(physical), Some(handler)) = (
            aws.deployment.physical_id(logical),
            functions.get(logical).cloned(),
        ) {
            functions.insert(physical.to_string(), handler);
        }
    }
    lambda_api::serve(functions)
        .await
        .context("serving the Lambda Invoke API")
}

impl Stack {
    pub async fn start(options: Options) -> Result<Self> {
        let mut parameters = relay::parameters(options.salesforce_events, options.echo_criteria);
        let more = options.parameters.iter();
        parameters.extend(more.map(|(k, v)| (k.to_string(), v.to_string())));
        let aws = LocalAws::start_with(&parameters)
            .await
            .context("starting moto and deploying the template")?;
        let resources = AwsResources {
            table_name: aws.table_name()?.to_string(),
            kms_key_id: aws.kms_key_id()?.to_string(),
            changes_queue_url: aws.queue_url("ChangesQueue").await?,
            writes_queue_url: aws.queue_url("WritesQueue").await?,
            run_ttl_days: shared::config::DEFAULT_RUN_TTL_DAYS,
        };
        let clients = AwsClients::new(&aws.sdk).with_sqs(&aws.sqs_sdk);
        let salesforce = SalesforceEmulator::start(sf::Options::default()).await?;
        let gainsight = GainsightEmulator::start(GAINSIGHT_ACCESS_KEY).await?;
        put_secrets(&clients, &resources, &salesforce).await?;
        let jobs = options.jobs.clone().unwrap_or_else(Jobs::builtin);
        let webhook = serve_webhook(&aws, &resources, &jobs).await?;
        sources::wire_sources(&jobs, (&gainsight, &salesforce), &webhook.url(), &options);
        let buses = relay::start_buses(&aws, &salesforce).await?;
        let lambda = serve_invocations(
            &aws,
            &api_config(&resources, (&salesforce, &gainsight)),
            &jobs,
        )
        .await?;
        let schedules = options.schedule_speedup.map(|speedup| {
            devstack::scheduler::Scheduler::start(&aws.deployment.schedules, &lambda.url(), speedup)
        });
        let (consumers, functions) = if options.consumers {
            let apis = (&salesforce, &gainsight);
            let lambda_url = lambda.url();
            start_consumers(
                &aws,
                &clients,
                &resources,
                &jobs,
                apis,
                &options,
                &lambda_url,
            )
            .await?
        } else {
            (Vec::new(), Vec::new())
        };
        let store = clients.state_store(&resources);
        Ok(Self {
            aws,
            clients,
            resources,
            store,
            salesforce,
            gainsight,
            jobs,
            webhook,
            lambda,
            consumers,
            functions,
            _schedules: schedules,
            buses,
            salesforce_events: options.salesforce_events,
            http: reqwest::Client::new(),
        })
    }

    /// A poller on this stack (its own credentials, as in the stack) reading `page` records per
    /// query, for tests that cross page boundaries.
    pub async fn poller(&self, page: usize) -> Result<poller::Poller> {
        let config = shared::config::ReadConfig {
            source: shared::config::SourceConfig {
                aws: self.resources.clone(),
                gainsight: GainsightSettings {
                    base_url: self.gainsight.url(),
                },
            },
            salesforce: self.salesforce_settings(),
        };
        let clients = clients_of(&self.aws, POLLER_FUNCTION);
        let poller = poller::Poller::from_aws(&config, &clients, self.jobs.clone()).await?;
        Ok(poller.with_page_size(page))
    }

    /// How the functions reach this stack's Salesforce org.
    pub fn salesforce_settings(&self) -> SalesforceSettings {
        salesforce_settings(&self.salesforce)
    }

    /// The Lambda Invoke API serving the resync and poller functions.
    pub fn lambda_url(&self) -> String {
        self.lambda.url()
    }

    /// Invokes the resync function through the local Lambda API, as an operator would; its report.
    pub async fn invoke_resync(&self, payload: Value) -> Result<Value> {
        let url = format!(
            "{}/2015-03-31/functions/{RESYNC_FUNCTION}/invocations",
            self.lambda_url()
        );
        let resp = self.http.post(url).json(&payload).send().await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        anyhow::ensure!(status.is_success(), "resync answered {status}: {body}");
        Ok(body)
    }

    /// What `syncctl` reads to reach this stack: the AWS endpoints (Lambda included), the
    /// table, queues and key, and the function names.
    pub fn syncctl_env(&self) -> Vec<(&'static str, String)> {
        let mut vars: Vec<(&str, String)> = self.aws.env();
        vars.extend(self.resources.env());
        vars.extend([
            ("AWS_ENDPOINT_URL_LAMBDA", self.lambda_url()),
            ("RESYNC_FUNCTION", RESYNC_FUNCTION.to_string()),
            ("POLLER_FUNCTION", POLLER_FUNCTION.to_string()),
            ("SALESFORCE_LOGIN_URL", self.salesforce.url()),
            ("SALESFORCE_CLIENT_ID", self.salesforce.client_id()),
            ("GAINSIGHT_BASE_URL", self.gainsight.url()),
        ]);
        vars
    }

    /// Records created as the integration user does through the API, which the Gainsight rule
    /// skips: data that was there before the sync, or loaded by another integration.
    pub async fn gainsight_insert_quietly(
        &self,
        object: &str,
        records: Vec<Value>,
    ) -> Result<Vec<String>> {
        let resp = self
            .http
            .post(format!("{}/v1/data/objects/{object}", self.gainsight.url()))
            .header("Accesskey", GAINSIGHT_ACCESS_KEY)
            .json(&json!({ "records": records }))
            .send()
            .await?;
        let body: Value = resp.json().await?;
        anyhow::ensure!(body["result"] == json!(true), "Gainsight answered {body}");
        let rows = body["data"]["records"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(rows
            .iter()
            .map(|r| r["Gsid"].as_str().unwrap_or_default().to_string())
            .collect())
    }

    /// Records created in Salesforce through the API as the integration user, which the
    /// Outbound Message rule skips; their Ids.
    pub async fn salesforce_create_quietly(
        &self,
        object: &str,
        records: Vec<Value>,
    ) -> Result<Vec<String>> {
        use shared::ports::SalesforceApi;
        let results = self
            .integration_user()
            .create(object, &rows(records))
            .await?;
        results
            .into_iter()
            .map(|r| r.id.context("Salesforce created no record"))
            .collect()
    }

    fn integration_user(&self) -> shared::adapters::salesforce::SalesforceClient {
        salesforce_client(&self.salesforce)
    }

    /// The webhook's Function URL (local listener).
    pub fn webhook_url(&self) -> String {
        self.webhook.url()
    }

    /// Calls the Gainsight emulator's public API as a Gainsight user or admin would (with a
    /// person's access key, not the integration user's).
    pub async fn gainsight_api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value> {
        let resp = self
            .http
            .request(method, format!("{}{}", self.gainsight.url(), path))
            .header("Accesskey", self.gainsight.person_key())
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        anyhow::ensure!(
            status.is_success() && body["result"] == json!(true),
            "Gainsight answered {status}: {body}"
        );
        Ok(body["data"].clone())
    }

    /// Creates Companies in Gainsight; returns their GSIDs.
    pub async fn create_companies(&self, records: Vec<Value>) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for chunk in records.chunks(50) {
            let data = self
                .gainsight_api(
                    reqwest::Method::POST,
                    "/v1/data/objects/Company",
                    json!({ "records": chunk }),
                )
                .await?;
            for r in data["records"].as_array().cloned().unwrap_or_default() {
                ids.push(r["Gsid"].as_str().unwrap_or_default().to_string());
            }
        }
        Ok(ids)
    }

    /// Inserts records of any Gainsight object; returns their GSIDs.
    pub async fn gainsight_insert(&self, object: &str, records: Vec<Value>) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for chunk in records.chunks(50) {
            let data = self
                .gainsight_api(
                    reqwest::Method::POST,
                    &format!("/v1/data/objects/{object}"),
                    json!({ "records": chunk }),
                )
                .await?;
            for r in data["records"].as_array().cloned().unwrap_or_default() {
                ids.push(r["Gsid"].as_str().unwrap_or_default().to_string());
            }
        }
        Ok(ids)
    }

    /// Updates records of any Gainsight object by GSID, as a Gainsight user would.
    pub async fn gainsight_update(&self, object: &str, records: Vec<Value>) -> Result<()> {
        for chunk in records.chunks(50) {
            self.gainsight_api(
                reqwest::Method::PUT,
                &format!("/v1/data/objects/{object}?keys=Gsid"),
                json!({ "records": chunk }),
            )
            .await?;
        }
        Ok(())
    }

    /// The Gainsight record with this GSID.
    pub fn gainsight_record(
        &self,
        object: &str,
        gsid: &str,
    ) -> Option<serde_json::Map<String, Value>> {
        self.gainsight
            .records(object)
            .into_iter()
            .find(|r| r.get("Gsid").and_then(Value::as_str) == Some(gsid))
    }

    /// Salesforce records of `object` whose `field` equals `value`.
    pub fn salesforce_where(
        &self,
        object: &str,
        field: &str,
        value: &str,
    ) -> Vec<serde_json::Map<String, Value>> {
        self.salesforce
            .records(object)
            .into_iter()
            .filter(|r| r.get(field).and_then(Value::as_str) == Some(value))
            .collect()
    }

    /// Gainsight records of `object` whose `field` equals `value`.
    pub fn gainsight_where(
        &self,
        object: &str,
        field: &str,
        value: &str,
    ) -> Vec<serde_json::Map<String, Value>> {
        self.gainsight
            .records(object)
            .into_iter()
            .filter(|r| r.get(field).and_then(Value::as_str) == Some(value))
            .collect()
    }

    /// The ledger record of `key` in `job`.
    pub async fn ledger_of(&self, job: &str, key: &str) -> Result<Option<LedgerRecord>> {
        Ok(self.store.ledger(job, &key.parse()?).await?)
    }

    /// Updates Companies in Gainsight by GSID.
    pub async fn update_companies(&self, records: Vec<Value>) -> Result<()> {
        for chunk in records.chunks(50) {
            self.gainsight_api(
                reqwest::Method::PUT,
                "/v1/data/objects/Company?keys=Gsid",
                json!({ "records": chunk }),
            )
            .await?;
        }
        Ok(())
    }

    pub async fn ledger(&self, gsid: &str) -> Result<Option<LedgerRecord>> {
        let key = shared::domain::LedgerKey::Gainsight(gsid.to_string());
        Ok(self.store.ledger("company_account", &key).await?)
    }

    /// Every ledger record of every job.
    pub async fn ledger_records(&self) -> Result<Vec<LedgerRecord>> {
        let mut all = Vec::new();
        for job in self.jobs.iter() {
            all.extend(self.store.list(&job.name, None, usize::MAX).await?);
        }
        Ok(all)
    }

    /// (synced, failed, ignored) from the ledger: records whose last attempt succeeded, records in
    /// error, and changes ignored on purpose.
    pub async fn counts(&self) -> Result<(usize, usize, u64)> {
        let records = self.ledger_records().await?;
        let synced = records.iter().filter(|r| r.synced && !r.error).count();
        let failed = records.iter().filter(|r| r.error).count();
        let ignored = records.iter().map(|r| r.ignored_count).sum();
        Ok((synced, failed, ignored))
    }

    /// Salesforce Accounts carrying `gsid` in their external-ID field.
    pub fn accounts_for(&self, gsid: &str) -> Vec<serde_json::Map<String, Value>> {
        self.salesforce
            .records("Account")
            .into_iter()
            .filter(|a| a.get("Gainsight_Company_Id__c").and_then(Value::as_str) == Some(gsid))
            .collect()
    }

    /// Polls `check` until it yields `Some`, or fails after `timeout` with `what`. The interval
    /// grows from 50 ms to 1 s so that waiting does not load moto more than the work does.
    pub async fn eventually<T, F, Fut>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let start = Instant::now();
        let mut interval = Duration::from_millis(50);
        loop {
            if let Some(v) = check().await? {
                return Ok(v);
            }
            anyhow::ensure!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(Duration::from_secs(1));
        }
    }

    /// Waits until both queues are empty (nothing visible or in flight).
    pub async fn drained(&self, timeout: Duration) -> Result<()> {
        let drained = self
            .eventually(timeout, "the queues to drain", || async {
                let depth = self.aws.queue_depth("ChangesQueue").await?
                    + self.aws.queue_depth("WritesQueue").await?;
                Ok((depth == 0).then_some(()))
            })
            .await;
        let Err(e) = drained else {
            return Ok(());
        };
        // What is still there, and in which state, says what the wait was for.
        let mut held = Vec::new();
        for queue in ["ChangesQueue", "WritesQueue"] {
            let d = self.aws.queue_depths(queue).await?;
            held.push(format!(
                "{queue}: {} to receive, {} in flight, {} delayed",
                d.visible, d.in_flight, d.delayed
            ));
        }
        anyhow::bail!("{e}; {}", held.join("; "))
    }

    /// The delivery faults the mapper's and the pusher's event source mappings injected so far.
    pub fn delivery_faults_injected(&self) -> event_source::DeliveryFaultCounts {
        let mut total = event_source::DeliveryFaultCounts::default();
        for c in &self.consumers {
            let counts = c.faults_injected();
            total.crashes += counts.crashes;
            total.duplicates += counts.duplicates;
        }
        total
    }

    pub async fn stop(self) {
        for c in self.consumers {
            c.stop().await;
        }
        for f in self.functions {
            f.stop().await;
        }
    }

    /// Each function running as its own binaries (`Options::function_binaries`) with the
    /// highest peak resident memory of its processes so far (MB).
    pub fn function_peak_rss_mb(&self) -> Vec<(&'static str, f64)> {
        (self.functions.iter())
            .map(|f| (f.function, f.peak_rss_mb().into_iter().fold(0.0, f64::max)))
            .collect()
    }
}

/// Signs a webhook body the way a Gainsight rule configured with the shared secret does.
fn rows(records: Vec<Value>) -> Vec<serde_json::Map<String, Value>> {
    records
        .into_iter()
        .filter_map(|r| r.as_object().cloned())
        .collect()
}

/// How a client reaches `emulator` with its Connected App (client credentials).
pub fn salesforce_settings(emulator: &SalesforceEmulator) -> SalesforceSettings {
    SalesforceSettings {
        login_url: emulator.url(),
        client_id: emulator.client_id(),
        api_version: "62.0".into(),
        auth: Default::default(),
    }
}

/// The product's Salesforce client signed in to `emulator` as its integration user.
pub fn salesforce_client(
    emulator: &SalesforceEmulator,
) -> shared::adapters::salesforce::SalesforceClient {
    shared::adapters::salesforce::SalesforceClient::new(
        salesforce_settings(emulator),
        Secret::new(emulator.client_secret()),
    )
}

/// A POST of `body` to `url` signed with `secret` now, as a Gainsight rule sends it.
pub fn signed_post(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let ts = shared::time::now_ms() / 1000;
    http.post(url)
        .header("content-type", "application/json")
        .header("x-gs-timestamp", ts.to_string())
        .header("x-gs-signature", sign(secret, ts, &body))
        .body(body)
}

pub fn sign(secret: &str, timestamp_s: i64, body: &str) -> String {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp_s}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
