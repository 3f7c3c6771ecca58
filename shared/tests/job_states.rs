//! Job states on DynamoDB (moto, the table deployed from `infra/template.yaml`): every job's
//! state in one item, transitions conditional on the version read, and the functions' cache.

use std::sync::Arc;

use anyhow::Result;
use shared::domain::job_state::{JobCommand, JobState};
use shared::ports::{
    change_job_state, JobStateCache, JobStateError, JobStates, StoreError, JOB_STATES_TTL_MS,
};

mod common;
use common::setup;

#[tokio::test]
async fn job_states_are_stored_in_one_item_and_changed_only_from_the_version_read() -> Result<()> {
    let (_aws, clients, resources) = setup().await?;
    let store: Arc<dyn JobStates> = Arc::new(clients.state_store(&resources));
    assert!(store.job_states().await?.is_empty(), "every job active");
    let cache = JobStateCache::new(store.clone());
    assert!(cache.stopped(0).await.is_empty());

    let pause = JobCommand::Pause {
        why: "upgrading the org".into(),
    };
    let paused = change_job_state(store.as_ref(), "company_account", &pause, ("ops", 1_000))
        .await?
        .expect("a transition");
    let off = JobCommand::Deactivate {
        why: "Salesforce refused the credentials: invalid_grant".into(),
    };
    change_job_state(store.as_ref(), "person_contact", &off, ("pusher", 2_000)).await?;
    let states = store.job_states().await?;
    assert_eq!(states["company_account"], paused);
    assert_eq!(states["person_contact"].state, JobState::Deactivated);
    assert_eq!(states["person_contact"].by, "pusher");

    // The cache trusts its read for the TTL, then sees both.
    assert!(cache.stopped(JOB_STATES_TTL_MS - 1).await.is_empty());
    let stopped = cache.stopped(JOB_STATES_TTL_MS).await;
    assert_eq!(stopped.len(), 2);

    // A write from a stale read is refused; the transition helper reads again.
    let err = store
        .put_job_state("company_account", &paused)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let refused = change_job_state(
        store.as_ref(),
        "company_account",
        &JobCommand::Reactivate,
        ("ops", 3_000),
    )
    .await;
    assert!(matches!(refused, Err(JobStateError::Refused(_))));
    let resumed = change_job_state(
        store.as_ref(),
        "company_account",
        &JobCommand::Resume,
        ("ops", 3_000),
    )
    .await?
    .expect("resumed");
    assert_eq!((resumed.state, resumed.version), (JobState::Active, 2));
    assert_eq!(store.job_states().await?["company_account"], resumed);
    Ok(())
}
