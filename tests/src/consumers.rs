//! The mapper and the pusher on their queues, as the template's event source mappings feed them:
//! their handlers in this process with the options' settings, or their release binaries under
//! the Lambda Runtime API with their production ones (`Options::function_binaries`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use devstack::event_source::{self, EventSource};
use devstack::gainsight::GainsightEmulator;
use devstack::moto::LocalAws;
use devstack::salesforce::{self as sf, SalesforceEmulator};
use shared::adapters::AwsClients;
use shared::config::AwsResources;
use shared::domain::Jobs;

use crate::{api_config, binaries, clients_of, Options, EVENT_SOURCE_CALLER, POLLER_FUNCTION};

/// The mapper and the pusher, each fed by its queue's event source mapping as the template
/// declares it: in this process, or as their own binaries (`Options::function_binaries`).
pub(crate) async fn start_consumers(
    aws: &LocalAws,
    clients: &AwsClients,
    resources: &AwsResources,
    jobs: &Jobs,
    apis: (&SalesforceEmulator, &GainsightEmulator),
    options: &Options,
    lambda_url: &str,
) -> Result<(Vec<EventSource>, Vec<binaries::FunctionProcesses>)> {
    let (handlers, functions) = match &options.function_binaries {
        Some(dir) => {
            anyhow::ensure!(
                options.jobs.is_none(),
                "function binaries run the shipped jobs only"
            );
            let env = function_env(aws, resources, apis, options, lambda_url);
            let mut functions = Vec::new();
            for (function, bin) in [("MapperFunction", "mapper"), ("PusherFunction", "pusher")] {
                let timeout = aws.deployment.timeout(function)?;
                let count = aws.deployment.event_source(function)?.maximum_concurrency;
                let mut env = env.clone();
                // Signed as the function, so the local AWS counts its requests as the product's.
                env.push(("AWS_ACCESS_KEY_ID", function.to_string()));
                let at = (timeout, count);
                functions.push(
                    binaries::FunctionProcesses::start(&dir.join(bin), function, at, &env).await?,
                );
            }
            let handlers = [functions[0].handler(), functions[1].handler()];
            (handlers, functions)
        }
        None => (
            in_process_handlers(aws, resources, jobs, apis, options, lambda_url).await?,
            Vec::new(),
        ),
    };
    // The event source mappings receive and delete as Lambda's service does, under their own
    // name, so what production pays for is told apart from the harness's own requests.
    let lambda_service = clients_of(aws, EVENT_SOURCE_CALLER).sqs;
    let mut consumers = Vec::new();
    for (function, handler) in ["MapperFunction", "PusherFunction"]
        .into_iter()
        .zip(handlers)
    {
        let spec = aws.deployment.event_source(function)?;
        let queue = clients
            .sqs
            .get_queue_url()
            .queue_name(&spec.queue)
            .send()
            .await?;
        let settings = event_source::Settings {
            queue_url: queue.queue_url().unwrap_or_default().to_string(),
            batch_size: spec.batch_size,
            batching_window: Duration::from_secs(spec.batching_window_seconds),
            report_batch_item_failures: spec.report_batch_item_failures,
            retry_after: Some(options.retry_after),
            concurrency: spec.maximum_concurrency,
            faults: options.delivery_faults,
        };
        consumers.push(EventSource::start(lambda_service.clone(), settings, handler).await?);
    }
    Ok((consumers, functions))
}

/// The mapper's and the pusher's handlers in this process, as the stack's options set them.
async fn in_process_handlers(
    aws: &LocalAws,
    resources: &AwsResources,
    jobs: &Jobs,
    (salesforce, gainsight): (&SalesforceEmulator, &GainsightEmulator),
    options: &Options,
    lambda_url: &str,
) -> Result<[event_source::Handler; 2]> {
    let config = api_config(resources, (salesforce, gainsight));
    let mapper_clients = clients_of(aws, "MapperFunction");
    let mapper = mapper::MapperFn::from_aws(&config, &mapper_clients, jobs.clone()).await?;
    // The Lambda Invoke API of the stack, as the mapper's own client would reach it.
    let lambda_sdk = aws.sdk.to_builder().endpoint_url(lambda_url).build();
    let polls = shared::adapters::lambda::LambdaPolls::new(&lambda_sdk, POLLER_FUNCTION);
    let integration_user = options
        .echo_criteria
        .then(|| sf::INTEGRATION_USER_ID.to_string());
    // Changes of a stopped job come back after seconds here, not minutes.
    let mapper = mapper
        .with_integration_user(integration_user)
        .with_polls(Arc::new(polls))
        .with_stopped_delay(options.deferral.unwrap_or(options.retry_after));
    let mapper = Arc::new(mapper);
    let pusher_clients = clients_of(aws, "PusherFunction");
    let (bulk_wait, bulk_recheck) = options.bulk_wait;
    let pusher =
        pusher::Pusher::from_aws_waiting(&config, &pusher_clients, jobs.clone(), bulk_wait).await?;
    // Deferred writes come back after seconds here (as soon as failed ones, unless the test sets
    // a deferral), not after 15 minutes.
    let writes = Arc::new(pusher_clients.queue(&resources.writes_queue_url));
    let pusher = pusher
        .with_deferral(writes, options.deferral.unwrap_or(options.retry_after))
        .with_load_quiet(options.load_quiet)
        .with_bulk_recheck(bulk_recheck);
    let pusher = Arc::new(pusher);
    let mapper_handler: event_source::Handler = Arc::new(move |event| {
        let mapper = Arc::clone(&mapper);
        Box::pin(async move { Ok(mapper.handle(event).await) })
    });
    let pusher_handler: event_source::Handler = Arc::new(move |event| {
        let pusher = Arc::clone(&pusher);
        Box::pin(async move { Ok(pusher.handle(event).await) })
    });
    Ok([mapper_handler, pusher_handler])
}

/// `dir` when it holds the mapper and pusher binaries `Options::function_binaries` runs, else an
/// error saying how to build them.
pub fn function_binaries_in(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    for bin in ["mapper", "pusher"] {
        anyhow::ensure!(
            dir.join(bin).is_file(),
            "no {bin} binary in {}: build it (`cargo build -p {bin}`, or the perf profile's)",
            dir.display()
        );
    }
    Ok(dir.to_path_buf())
}

/// The environment the mapper and pusher binaries read their configuration from, as the
/// template gives it to them deployed.
fn function_env(
    aws: &LocalAws,
    resources: &AwsResources,
    (salesforce, gainsight): (&SalesforceEmulator, &GainsightEmulator),
    options: &Options,
    lambda_url: &str,
) -> Vec<(&'static str, String)> {
    let mut env = aws.env();
    env.extend(resources.env());
    env.extend([
        ("AWS_ENDPOINT_URL_LAMBDA", lambda_url.to_string()),
        ("POLLER_FUNCTION", POLLER_FUNCTION.to_string()),
        ("SALESFORCE_LOGIN_URL", salesforce.url()),
        ("SALESFORCE_CLIENT_ID", salesforce.client_id()),
        ("GAINSIGHT_BASE_URL", gainsight.url()),
        ("RUST_LOG", "warn".to_string()),
    ]);
    if options.echo_criteria {
        let user = sf::INTEGRATION_USER_ID.to_string();
        env.push(("SALESFORCE_INTEGRATION_USER_ID", user));
    }
    env
}
