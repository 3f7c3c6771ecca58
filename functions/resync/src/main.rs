//! Lambda entry point of resync: tracing, config, jobs, clients and the access key once.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use resync::{Config, Resync, ResyncRequest};
use shared::adapters::{aws_config, AwsClients};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let jobs = shared::config::jobs()?;
    let clients = AwsClients::new(&aws_config().await);
    let resync = Arc::new(Resync::from_aws(&config, &clients, jobs).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ResyncRequest>| {
        let resync = Arc::clone(&resync);
        async move { resync.handle(event.payload).await.map_err(Error::from) }
    }))
    .await
}
