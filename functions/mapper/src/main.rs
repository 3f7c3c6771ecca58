//! Lambda entry point of the mapper: tracing, config, jobs and clients once per cold start.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use mapper::{Config, MapperFn};
use shared::adapters::lambda::LambdaPolls;
use shared::adapters::{aws_config, AwsClients};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let jobs = shared::config::jobs()?;
    let sdk = aws_config().await;
    let clients = AwsClients::new(&sdk);
    let deliveries = shared::config::max_receives("CHANGES_MAX_RECEIVE_COUNT")?;
    let mut mapper = MapperFn::from_aws(&config, &clients, jobs)
        .await?
        .with_max_receives(deliveries)
        .with_integration_user(shared::config::optional("SALESFORCE_INTEGRATION_USER_ID"));
    if let Some(poller) = shared::config::optional("POLLER_FUNCTION") {
        mapper = mapper.with_polls(Arc::new(LambdaPolls::new(&sdk, &poller)));
    }
    let mapper = Arc::new(mapper);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let mapper = Arc::clone(&mapper);
        // The invocation's deadline (epoch ms): lookups stop in time to record what was mapped.
        let deadline = shared::lambda::Deadline::at_ms(event.context.deadline);
        let now_ms = shared::time::now_ms();
        async move { Ok::<_, Error>(mapper.handle_at_by(event.payload, now_ms, deadline).await.0) }
    }))
    .await
}
