//! Adapters of the ports: DynamoDB, SQS and KMS through the AWS SDK, Gainsight and Salesforce
//! through reqwest. Conversions between SDK types and domain types live here and nowhere else.

mod bulk;
pub mod dynamo;
pub mod gainsight;
mod http;
pub mod kms;
pub mod lambda;
pub mod oauth;
pub mod salesforce;
mod soql;
pub mod sqs;

/// Loads the AWS SDK configuration from the environment (region, credentials, and the global
/// `AWS_ENDPOINT_URL` that points the SDK at moto locally).
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The AWS SDK clients of one cold start, built once from one `SdkConfig`.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub kms: aws_sdk_kms::Client,
}

impl AwsClients {
    /// SQS at an endpoint of its own (`AWS_ENDPOINT_URL_SQS` does the same from the environment).
    pub fn with_sqs(mut self, config: &aws_config::SdkConfig) -> Self {
        self.sqs = aws_sdk_sqs::Client::new(config);
        self
    }

    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            dynamo: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
        }
    }

    pub fn state_store(&self, resources: &crate::config::AwsResources) -> dynamo::DynamoStateStore {
        dynamo::DynamoStateStore::new(self.dynamo.clone(), &resources.table_name)
            .with_run_ttl_days(resources.run_ttl_days)
    }

    pub fn secrets(&self, resources: &crate::config::AwsResources) -> kms::KmsSecrets {
        kms::KmsSecrets::new(
            self.kms.clone(),
            self.dynamo.clone(),
            &resources.table_name,
            &resources.kms_key_id,
        )
    }

    pub fn queue(&self, url: &str) -> sqs::SqsQueue {
        sqs::SqsQueue::new(self.sqs.clone(), url)
    }

    /// A Gainsight client with the access key decrypted from KMS (once: call at cold start).
    pub async fn gainsight(
        &self,
        resources: &crate::config::AwsResources,
        settings: &crate::config::GainsightSettings,
    ) -> Result<gainsight::GainsightClient, crate::ports::SecretsError> {
        let secrets = std::sync::Arc::new(self.secrets(resources));
        gainsight::GainsightClient::from_secrets(settings.clone(), secrets).await
    }

    /// The poller's and resync's ports on AWS (the access key decrypted once).
    pub async fn source_ports(
        &self,
        config: &crate::config::SourceConfig,
        jobs: crate::domain::Jobs,
    ) -> Result<crate::ports::SourcePorts, crate::ports::SecretsError> {
        Ok(crate::ports::SourcePorts {
            changes: std::sync::Arc::new(self.queue(&config.aws.changes_queue_url)),
            gainsight: std::sync::Arc::new(self.gainsight(&config.aws, &config.gainsight).await?),
            jobs,
        })
    }

    /// A Salesforce client with its flow's secrets decrypted from KMS (call at cold start); they
    /// are read again whenever Salesforce refuses them, so a replaced secret is picked up.
    pub async fn salesforce(
        &self,
        resources: &crate::config::AwsResources,
        settings: &crate::config::SalesforceSettings,
    ) -> Result<salesforce::SalesforceClient, crate::ports::SecretsError> {
        let source = oauth::CredentialSource {
            secrets: std::sync::Arc::new(self.secrets(resources)),
            flow: settings.auth.clone(),
        };
        salesforce::SalesforceClient::from_source(settings.clone(), source).await
    }
}
