//! Faults at chosen rates, for soak tests: each API call of an emulator may be throttled,
//! refused as unavailable, answered slowly, or have its answer lost after the request was
//! applied (what a client sees as a timeout or a gateway error when the write did land). Each
//! emulator adds its own (expired sessions, row locks). Off unless set.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;

/// Rates from 0 to 1, per API call.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default)]
pub struct FaultRates {
    /// Refused as over a rate limit (not applied), with a `Retry-After` of 1 s.
    pub throttled: f64,
    /// Refused with a 503 (not applied).
    pub unavailable: f64,
    /// Answered after `slow_ms`.
    pub slow: f64,
    pub slow_ms: u64,
    /// Applied, then answered with a 504 as if the answer was lost on the way.
    pub lost_answer: f64,
    /// Salesforce: every session expires before the call (401 `INVALID_SESSION_ID`).
    pub expired_session: f64,
    /// Salesforce: each record of a Collections call fails with `UNABLE_TO_LOCK_ROW`.
    pub locked_rows: f64,
}

/// Faults injected, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    pub throttled: u64,
    pub unavailable: u64,
    pub slow: u64,
    pub lost_answers: u64,
    pub expired_sessions: u64,
    pub locked_rows: u64,
}

impl FaultCounts {
    /// Faults of every kind injected so far.
    pub fn total(&self) -> u64 {
        self.throttled
            + self.unavailable
            + self.slow
            + self.lost_answers
            + self.expired_sessions
            + self.locked_rows
    }
}

/// True with probability `rate`.
pub fn chance(rate: f64) -> bool {
    rate > 0.0 && rand::random::<f64>() < rate
}

/// How an emulator answers the faults it does not apply.
pub struct Refusals {
    pub throttled: fn() -> Response,
    pub unavailable: fn() -> Response,
    pub lost: fn() -> Response,
}

/// What is done to one call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plan {
    throttled: bool,
    unavailable: bool,
    slow_ms: Option<u64>,
    lost: bool,
}

impl Plan {
    /// Draws the faults of one call from `rates`.
    pub fn draw(rates: &FaultRates) -> Self {
        let throttled = chance(rates.throttled);
        let unavailable = !throttled && chance(rates.unavailable);
        Self {
            throttled,
            unavailable,
            slow_ms: chance(rates.slow).then_some(rates.slow_ms),
            lost: !throttled && !unavailable && chance(rates.lost_answer),
        }
    }

    /// Adds the plan's faults to `counts`.
    pub fn count(&self, counts: &mut FaultCounts) {
        counts.throttled += u64::from(self.throttled);
        counts.unavailable += u64::from(self.unavailable);
        counts.slow += u64::from(self.slow_ms.is_some());
        counts.lost_answers += u64::from(self.lost);
    }

    /// Runs the call under the plan.
    pub async fn run(self, refusals: &Refusals, request: Request, next: Next) -> Response {
        if let Some(ms) = self.slow_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if self.throttled {
            return (refusals.throttled)();
        }
        if self.unavailable {
            return (refusals.unavailable)();
        }
        let answer = next.run(request).await;
        if self.lost {
            return (refusals.lost)();
        }
        answer
    }
}
