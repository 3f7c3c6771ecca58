//! The poll trigger on AWS: the poller invoked asynchronously (`InvocationType: Event`) with a
//! poll request, as its schedules invoke it.

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::domain::System;
use crate::ports::{PollTrigger, TriggerError};

pub struct LambdaPolls {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaPolls {
    /// Invokes `function` (name or ARN) with the Lambda client of `config`.
    pub fn new(config: &aws_config::SdkConfig, function: &str) -> Self {
        Self {
            client: aws_sdk_lambda::Client::new(config),
            function: function.to_string(),
        }
    }
}

#[async_trait]
impl PollTrigger for LambdaPolls {
    async fn poll_since(
        &self,
        job: &str,
        system: System,
        since_ms: i64,
    ) -> Result<(), TriggerError> {
        let request = serde_json::json!({ "job": job, "sinceMs": since_ms, "only": system });
        self.client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(request.to_string()))
            .send()
            .await
            .map_err(|e| TriggerError(aws_sdk_lambda::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
