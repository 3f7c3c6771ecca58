//! Job states in the state table: one item, `JOBS` / `STATE`, with an attribute `job#{name}`
//! per job holding its status as JSON (and `version#{name}` its version, for conditional writes),
//! so one consistent GetItem reads every job's state.

use std::collections::BTreeMap;

use super::*;
use crate::domain::job_state::JobStatus;
use crate::ports::JobStates;

const ATTRIBUTE_PREFIX: &str = "job#";
/// The version of each job's status, beside it, for conditional writes.
const VERSION_PREFIX: &str = "version#";

fn states_key() -> Item {
    HashMap::from([("pk".into(), s("JOBS")), ("sk".into(), s("STATE"))])
}

#[async_trait]
impl JobStates for DynamoStateStore {
    async fn job_states(&self) -> Result<BTreeMap<String, JobStatus>, StoreError> {
        let out = (self.client.get_item())
            .table_name(&self.table)
            .set_key(Some(states_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let mut states = BTreeMap::new();
        for (name, value) in out.item().into_iter().flatten() {
            let Some(job) = name.strip_prefix(ATTRIBUTE_PREFIX) else {
                continue;
            };
            let json = value
                .as_s()
                .map_err(|_| corrupt_state(job, "not a string"))?;
            let status: JobStatus =
                serde_json::from_str(json).map_err(|e| corrupt_state(job, &e.to_string()))?;
            states.insert(job.to_string(), status);
        }
        Ok(states)
    }

    async fn put_job_state(&self, job: &str, status: &JobStatus) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(status).map_err(|e| StoreError::Rejected(e.to_string()))?;
        let prior = status.version.saturating_sub(1);
        // Conditional on the version read; never stored counts as version 0.
        let condition = if prior == 0 {
            "attribute_not_exists(#version)"
        } else {
            "#version = :prior"
        };
        let mut request = (self.client.update_item())
            .table_name(&self.table)
            .set_key(Some(states_key()))
            .update_expression("SET #job = :status, #version = :version")
            .condition_expression(condition)
            .expression_attribute_names("#job", format!("{ATTRIBUTE_PREFIX}{job}"))
            .expression_attribute_names("#version", format!("{VERSION_PREFIX}{job}"))
            .expression_attribute_values(":status", s(json))
            .expression_attribute_values(":version", n(status.version));
        if prior > 0 {
            request = request.expression_attribute_values(":prior", n(prior));
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::Conflict(format!(
                "job {job}'s state changed since it was read"
            ))),
            Err(e) => Err(store_error(e)),
        }
    }
}

fn corrupt_state(job: &str, message: &str) -> StoreError {
    StoreError::Corrupt {
        key: format!("JOBS/STATE {ATTRIBUTE_PREFIX}{job}"),
        message: message.to_string(),
    }
}
