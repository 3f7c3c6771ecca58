//! Attachments of Timeline activities: after its Task or Event is written, each file not uploaded
//! before is read from Gainsight and uploaded to Salesforce, published to that record. An upload
//! is remembered in the pair's ledger record so it never goes up twice; one that fails marks the
//! pair error, saying which file and why, after its write is recorded, and is tried again by the
//! next write of the activity (a resync).

use std::collections::HashMap;
use std::sync::Arc;

use shared::domain::push::{Pending, WriteOutcome};
use shared::domain::timeline::{attachment_state_key, not_uploaded, uploaded_state, Attachment};
use shared::domain::WriteCommand;
use shared::domain::{LedgerBatch, LedgerKey};
use shared::ports::{ActivityFiles, ApiError, FileUploads};

/// A written record whose attachments did not all go up: its write is recorded as synced, then its
/// pair is marked error with `message`.
#[derive(Debug, PartialEq)]
pub struct Unfinished {
    pub message_id: String,
    pub ledger_key: LedgerKey,
    pub message: String,
}

/// Where attachments come from and go to.
pub struct Files {
    pub download: Arc<dyn ActivityFiles>,
    pub upload: Arc<dyn FileUploads>,
}

impl Files {
    /// Uploads the attachments of every written record; what went up is added to the command's
    /// field states (recorded with the write), what did not to its notes. A file already
    /// published to its record (an upload whose answer was lost, or whose ledger write a crash
    /// prevented) is recorded, not uploaded again: one query per batch finds them. Returns the
    /// records some of whose files did not go up.
    pub async fn upload_all(
        &self,
        settled: &mut [(Pending, WriteOutcome)],
        ledgers: &LedgerBatch,
        now_ms: i64,
    ) -> Vec<Unfinished> {
        let mut todo = Vec::new();
        for (i, (pending, outcome)) in settled.iter().enumerate() {
            let WriteOutcome::Synced {
                target_id: Some(target),
            } = outcome
            else {
                continue;
            };
            let cmd = &pending.command;
            let ledger = ledgers.get(&cmd.job, &cmd.ledger_key);
            for file in not_uploaded(&cmd.attachments, ledger) {
                todo.push((i, target.clone(), file.clone()));
            }
        }
        if todo.is_empty() {
            return Vec::new();
        }
        let published = self.published(&todo).await;
        let mut failed: Vec<(usize, String)> = Vec::new();
        for (i, target, file) in todo {
            let cmd = &mut settled[i].0.command;
            let done = match &published {
                Ok(found) => match found.get(&(target.clone(), file.id.clone())) {
                    Some(version) => Ok(version.clone()),
                    None => self.one(&file, &target).await.map_err(|e| e.to_string()),
                },
                Err(e) => Err(format!(
                    "the files already on the record could not be read ({e})"
                )),
            };
            if let Some(why) = note_upload(cmd, &file, done, now_ms) {
                failed.push((i, why));
            }
        }
        unfinished(settled, failed)
    }

    /// The files already published to the records `todo` writes to, by (record, attachment id).
    async fn published(
        &self,
        todo: &[(usize, String, Attachment)],
    ) -> Result<HashMap<(String, String), String>, ApiError> {
        let mut records: Vec<String> = todo.iter().map(|(_, t, _)| t.clone()).collect();
        records.sort();
        records.dedup();
        let found = self.upload.published(&records).await?;
        Ok(found
            .into_iter()
            .map(|(record, attachment, version)| ((record, attachment), version))
            .collect())
    }

    async fn one(
        &self,
        file: &Attachment,
        link_to: &str,
    ) -> Result<String, shared::ports::ApiError> {
        let bytes = self.download.download(file).await?;
        self.upload.upload(file, &bytes, link_to).await
    }
}

/// One `Unfinished` per record of `settled` with failures (by index), saying what to do.
fn unfinished(
    settled: &[(Pending, WriteOutcome)],
    failed: Vec<(usize, String)>,
) -> Vec<Unfinished> {
    let mut by_record: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for (i, why) in failed {
        by_record.entry(i).or_default().push(why);
    }
    by_record
        .into_iter()
        .map(|(i, whys)| {
            let (pending, _) = &settled[i];
            let cmd = &pending.command;
            Unfinished {
                message_id: pending.message_id.clone(),
                ledger_key: cmd.ledger_key.clone(),
                message: format!(
                    "the {} {} was written but {}; `syncctl resync --job {} --status error` writes it again and uploads what is missing",
                    cmd.target.label(),
                    cmd.object,
                    whys.join("; "),
                    cmd.job
                ),
            }
        })
        .collect()
}

/// Notes one attachment's upload in its write: the ContentVersion in the field states, or why not
/// in the notes (and returned).
fn note_upload(
    cmd: &mut WriteCommand,
    file: &Attachment,
    done: Result<String, String>,
    now_ms: i64,
) -> Option<String> {
    match done {
        Ok(version) => {
            tracing::info!(job = %cmd.job, attachment = %file.id, content_version = %version, "attachment uploaded");
            cmd.field_states.insert(
                attachment_state_key(&file.id),
                uploaded_state(&version, now_ms),
            );
            None
        }
        Err(e) => {
            tracing::warn!(job = %cmd.job, attachment = %file.id, error = %e, "attachment not uploaded");
            let why = format!(
                "attachment {} ({}) was not uploaded: {e}",
                file.name, file.id
            );
            cmd.skipped
                .push(format!("{why}; a resync of the activity tries again"));
            Some(why)
        }
    }
}
