//! The built `mapper` binary started as Lambda starts it: with its configuration missing it stops
//! before asking for work and names what is missing. (Running it in the local stack is
//! `a_change_goes_through_the_mapper_and_pusher_binaries` in the workspace's `tests/e2e.rs`.)

#[tokio::test]
async fn the_mapper_binary_fails_fast_naming_a_missing_variable() {
    shared::fakes::assert_fails_fast_naming(env!("CARGO_BIN_EXE_mapper"), "TABLE_NAME").await;
}
