//! KMS adapter of the secrets port: plaintext is encrypted with the deployment's key under an
//! encryption context naming the secret, and only the ciphertext is stored (in the state table).
//! A ciphertext moved to another secret's name fails to decrypt, because the context differs.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob as DynamoBlob;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;

use crate::ports::{Secrets, SecretsError};
use crate::secret::Secret;

const CONTEXT_KEY: &str = "secret";

#[derive(Clone, Debug)]
pub struct KmsSecrets {
    kms: aws_sdk_kms::Client,
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    key_id: String,
}

impl KmsSecrets {
    pub fn new(
        kms: aws_sdk_kms::Client,
        dynamo: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        key_id: impl Into<String>,
    ) -> Self {
        Self {
            kms,
            dynamo,
            table: table.into(),
            key_id: key_id.into(),
        }
    }
}

fn kms_error<E: ProvideErrorMetadata>(
    name: &str,
    err: aws_sdk_kms::error::SdkError<E>,
) -> SecretsError {
    match err.code() {
        Some(
            code @ ("InvalidCiphertextException"
            | "IncorrectKeyException"
            | "AccessDeniedException"
            | "DisabledException"
            | "NotFoundException"
            | "KMSInvalidStateException"),
        ) => SecretsError::Decrypt {
            name: name.into(),
            message: format!("{code}: {}", err.message().unwrap_or("")),
        },
        _ => SecretsError::Unavailable(format!(
            "KMS: {}",
            err.message().unwrap_or("request failed")
        )),
    }
}

/// The table key of a secret's item.
fn secret_key(name: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_string(),
            AttributeValue::S(format!("SECRET#{name}")),
        ),
        ("sk".to_string(), AttributeValue::S("SECRET".into())),
    ])
}

fn dynamo_error<E: ProvideErrorMetadata>(
    err: aws_sdk_dynamodb::error::SdkError<E>,
) -> SecretsError {
    SecretsError::Unavailable(format!(
        "DynamoDB: {}",
        err.message().unwrap_or("request failed")
    ))
}

#[async_trait]
impl Secrets for KmsSecrets {
    async fn get(&self, name: &str) -> Result<Secret, SecretsError> {
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.table)
            .set_key(Some(secret_key(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        let ciphertext = out
            .item()
            .and_then(|item| item.get("ciphertext"))
            .and_then(|v| v.as_b().ok())
            .ok_or_else(|| SecretsError::NotFound(name.into()))?;
        let plain = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(ciphertext.as_ref()))
            .encryption_context(CONTEXT_KEY, name)
            .send()
            .await
            .map_err(|e| kms_error(name, e))?;
        let bytes = plain.plaintext().ok_or_else(|| SecretsError::Decrypt {
            name: name.into(),
            message: "KMS returned no plaintext".into(),
        })?;
        let text =
            String::from_utf8(bytes.as_ref().to_vec()).map_err(|_| SecretsError::Decrypt {
                name: name.into(),
                message: "plaintext is not UTF-8".into(),
            })?;
        Ok(Secret::new(text))
    }

    async fn put(&self, name: &str, plaintext: &Secret) -> Result<(), SecretsError> {
        let out = self
            .kms
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext.expose().as_bytes()))
            .encryption_context(CONTEXT_KEY, name)
            .send()
            .await
            .map_err(|e| kms_error(name, e))?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| SecretsError::Unavailable("KMS returned no ciphertext".into()))?;
        self.dynamo
            .put_item()
            .table_name(&self.table)
            .set_item(Some(secret_key(name)))
            .item(
                "ciphertext",
                AttributeValue::B(DynamoBlob::new(blob.as_ref())),
            )
            .item("key_id", AttributeValue::S(self.key_id.clone()))
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }
}
