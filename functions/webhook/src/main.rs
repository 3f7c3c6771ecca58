//! Lambda entry point of the webhook: tracing, config, clients and the secret once per cold start.

use std::sync::Arc;

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::adapters::{aws_config, AwsClients};
use webhook::{Config, Webhook};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let jobs = shared::config::jobs()?;
    let clients = AwsClients::new(&aws_config().await);
    let webhook = Arc::new(Webhook::from_aws(&config, &clients, jobs).await?);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<LambdaFunctionUrlRequest>| {
            let webhook = Arc::clone(&webhook);
            async move { Ok::<_, Error>(webhook.handle(event.payload).await) }
        },
    ))
    .await
}
