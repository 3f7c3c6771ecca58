//! Lambda entry point of the mapper: tracing, config, jobs and clients once per cold start.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use mapper::{Config, MapperFn};
use shared::adapters::{aws_config, AwsClients};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let jobs = shared::config::jobs()?;
    let clients = AwsClients::new(&aws_config().await);
    let deliveries = shared::config::max_receives("CHANGES_MAX_RECEIVE_COUNT")?;
    let mapper = Arc::new(
        MapperFn::from_aws(&config, &clients, jobs)
            .await?
            .with_max_receives(deliveries),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let mapper = Arc::clone(&mapper);
        // The invocation's deadline (epoch ms): lookups stop in time to record what was mapped.
        let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        async move { Ok::<_, Error>(mapper.handle_by(event.payload, deadline_ms).await) }
    }))
    .await
}
