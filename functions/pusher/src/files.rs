//! Attachments of Timeline activities: after its Task or Event is written, each file not uploaded
//! before is read from Gainsight and uploaded to Salesforce, published to that record. An upload
//! is remembered in the pair's ledger record so it never goes up twice; one that fails is noted
//! with the record's outcome and tried again by the next write of the activity (a resync).

use std::sync::Arc;

use shared::domain::push::{Pending, WriteOutcome};
use shared::domain::timeline::{attachment_state_key, not_uploaded, uploaded_state};
use shared::domain::LedgerBatch;
use shared::ports::{ActivityFiles, FileUploads};

/// Where attachments come from and go to.
pub struct Files {
    pub download: Arc<dyn ActivityFiles>,
    pub upload: Arc<dyn FileUploads>,
}

impl Files {
    /// Uploads the attachments of every written record; what went up is added to the command's
    /// field states (recorded with the write), what did not to its notes.
    pub async fn upload_all(
        &self,
        settled: &mut [(Pending, WriteOutcome)],
        ledgers: &LedgerBatch,
        now_ms: i64,
    ) {
        for (pending, outcome) in settled.iter_mut() {
            let WriteOutcome::Synced {
                target_id: Some(target),
            } = outcome
            else {
                continue;
            };
            let cmd = &mut pending.command;
            let ledger = ledgers.get(&cmd.job, &cmd.ledger_key);
            let todo: Vec<_> = not_uploaded(&cmd.attachments, ledger)
                .into_iter()
                .cloned()
                .collect();
            for file in todo {
                match self.one(&file, target).await {
                    Ok(version) => {
                        tracing::info!(job = %cmd.job, attachment = %file.id, content_version = %version, "attachment uploaded");
                        cmd.field_states.insert(
                            attachment_state_key(&file.id),
                            uploaded_state(&version, now_ms),
                        );
                    }
                    Err(e) => {
                        tracing::warn!(job = %cmd.job, attachment = %file.id, error = %e, "attachment not uploaded");
                        cmd.skipped.push(format!(
                            "attachment {} ({}) not uploaded: {e}; a resync of the activity tries again",
                            file.name, file.id
                        ));
                    }
                }
            }
        }
    }

    async fn one(
        &self,
        file: &shared::domain::timeline::Attachment,
        link_to: &str,
    ) -> Result<String, shared::ports::ApiError> {
        let bytes = self.download.download(file).await?;
        self.upload.upload(file, &bytes, link_to).await
    }
}
