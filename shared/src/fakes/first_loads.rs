//! The in-memory first-load store: the job's load and its chunks, checkpoint moves conditional
//! as DynamoDB's are.

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::first_load::steps::{FirstLoad, FirstLoadState, Step};
use crate::ports::{FirstLoadStore, StoreError};

#[async_trait]
impl FirstLoadStore for MemoryStore {
    async fn first_load(&self, job: &str) -> Result<Option<FirstLoad>, StoreError> {
        self.check()?;
        Ok(self
            .first_loads
            .lock()
            .unwrap()
            .get(job)
            .map(|(l, _)| l.clone()))
    }

    async fn put_first_load_chunk(
        &self,
        load: &FirstLoad,
        index: usize,
        steps: &[Step],
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut chunks = self.first_load_chunks.lock().unwrap();
        let chunks = chunks
            .entry((load.job.clone(), load.run.clone()))
            .or_default();
        if chunks.len() <= index {
            chunks.resize(index + 1, Vec::new());
        }
        chunks[index] = steps.to_vec();
        Ok(())
    }

    async fn begin_first_load(&self, load: &FirstLoad) -> Result<bool, StoreError> {
        self.check()?;
        let mut loads = self.first_loads.lock().unwrap();
        let busy = loads
            .get(&load.job)
            .is_some_and(|(l, _)| l.state == FirstLoadState::Applying && l.run != load.run);
        if !busy {
            let key = (load.job.clone(), load.run.clone());
            let chunks = self.first_load_chunks.lock().unwrap().remove(&key);
            loads.insert(load.job.clone(), (load.clone(), chunks.unwrap_or_default()));
        }
        Ok(!busy)
    }

    async fn first_load_chunk(
        &self,
        job: &str,
        run: &str,
        index: usize,
    ) -> Result<Vec<Step>, StoreError> {
        self.check()?;
        let loads = self.first_loads.lock().unwrap();
        (loads.get(job))
            .filter(|(l, _)| l.run == run)
            .and_then(|(_, chunks)| chunks.get(index).cloned())
            .ok_or_else(|| StoreError::Corrupt {
                key: format!("FIRSTLOAD#{job}/{run}/{index}"),
                message: "no such chunk".into(),
            })
    }

    async fn advance_first_load(
        &self,
        job: &str,
        run: &str,
        (done, state): (usize, FirstLoadState),
    ) -> Result<bool, StoreError> {
        self.check()?;
        let mut loads = self.first_loads.lock().unwrap();
        match loads.get_mut(job) {
            Some((l, _))
                if l.run == run && l.state == FirstLoadState::Applying && l.done == done =>
            {
                l.done = done + 1;
                l.state = state;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn cancel_first_load(&self, job: &str) -> Result<bool, StoreError> {
        self.check()?;
        let mut loads = self.first_loads.lock().unwrap();
        match loads.get_mut(job) {
            Some((l, _)) if l.state == FirstLoadState::Applying => {
                l.state = FirstLoadState::Cancelled;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
