//! Lambda entry point of the poller: tracing, config, jobs, clients and the access key once.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use poller::{Config, PollRequest, Poller};
use shared::adapters::{aws_config, AwsClients};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let jobs = shared::config::jobs()?;
    let clients = AwsClients::new(&aws_config().await);
    let overlap_ms = poller::overlap_from_env()?;
    let poller = Poller::from_aws(&config, &clients, jobs).await?;
    let poller = Arc::new(poller.with_overlap(overlap_ms));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<PollRequest>| {
        let poller = Arc::clone(&poller);
        // The invocation's deadline (epoch ms): no page is read too close to it.
        let deadline = shared::lambda::Deadline::at_ms(event.context.deadline);
        let now_ms = shared::time::now_ms();
        async move {
            poller
                .handle_at_by(event.payload, now_ms, deadline)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}
