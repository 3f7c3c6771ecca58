//! Lambda entry point of the pusher: tracing, config, clients and API secrets once per cold start.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use pusher::{Config, Pusher};
use shared::adapters::{aws_config, AwsClients};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let jobs = shared::config::jobs()?;
    let clients = AwsClients::new(&aws_config().await);
    let budgets = pusher::budgets_from_env()?;
    let pusher = Arc::new(
        Pusher::from_aws(&config, &clients, jobs)
            .await?
            .with_budgets(budgets)
            .with_max_receives(shared::config::max_receives("WRITES_MAX_RECEIVE_COUNT")?),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let pusher = Arc::clone(&pusher);
        // The invocation's deadline (epoch ms): no write starts too close to it.
        let deadline = shared::lambda::Deadline::at_ms(event.context.deadline);
        let now_ms = shared::time::now_ms();
        async move { Ok::<_, Error>(pusher.handle_at_by(event.payload, now_ms, deadline).await.0) }
    }))
    .await
}
