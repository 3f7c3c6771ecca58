//! The in-memory waiting store: changes parked under their parent, as the DynamoDB one files them.

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::waiting::{ParentKey, WaitingChange};
use crate::ports::{StoreError, WaitingStore};

#[async_trait]
impl WaitingStore for MemoryStore {
    async fn wait(&self, parked: &[WaitingChange]) -> Result<(), StoreError> {
        self.check()?;
        let mut all = self.waiting.lock().unwrap();
        for p in parked {
            all.insert((p.parent.key().to_string(), p.slot()), p.clone());
        }
        Ok(())
    }

    async fn waiting_on(&self, parents: &[ParentKey]) -> Result<Vec<WaitingChange>, StoreError> {
        self.check()?;
        *self.waiting_reads.lock().unwrap() += parents.len();
        let all = self.waiting.lock().unwrap();
        let wanted = |k: &str| parents.iter().any(|p| p.as_str() == k);
        Ok(all
            .iter()
            .filter(|((parent, _), _)| wanted(parent))
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn waiting_in(&self, job: &str) -> Result<Vec<WaitingChange>, StoreError> {
        self.check()?;
        let all = self.waiting.lock().unwrap();
        Ok(all.values().filter(|p| p.job == job).cloned().collect())
    }

    async fn release(&self, parked: &[WaitingChange]) -> Result<(), StoreError> {
        self.check()?;
        let mut all = self.waiting.lock().unwrap();
        for p in parked {
            let key = (p.parent.key().to_string(), p.slot());
            if all
                .get(&key)
                .is_some_and(|kept| kept.filed_at_ms == p.filed_at_ms)
            {
                all.remove(&key);
            }
        }
        Ok(())
    }
}
