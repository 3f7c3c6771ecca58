//! A time-bounded fuzzing loop for the parsers that face the network or the admin (the webhook's
//! JSON and signatures, Outbound Messages, job files, CSV imports): proptest strategies make the
//! inputs, mostly valid ones with a few random edits so the parsers are driven past their first
//! check. Each target runs for `FUZZ_SECONDS` (1 s by default, as in `make test`; `make fuzz` runs
//! longer) and prints `fuzz: <target> = <cases> cases in <s> s`. A panic, or a check the input
//! fails, stops the run with the input and the seed that reproduces it (`FUZZ_SEED`), and the
//! input is written to `target/fuzz-crashes/` to become a regression test.

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// How long each target runs: `FUZZ_SECONDS`, or 1 s.
pub fn budget() -> Duration {
    std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(1), Duration::from_secs_f64)
}

/// The seed of this run: `FUZZ_SEED`, or one from the clock (printed on a failure).
fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

/// Runs `check` on inputs from `strategy` until the budget is spent; the number of cases run.
/// Panics, naming the input and the seed, when `check` panics or refuses an input.
pub fn run<S>(target: &str, strategy: S, check: impl Fn(&S::Value) -> Result<(), String>) -> u64
where
    S: Strategy,
    S::Value: Debug,
{
    let seed = seed();
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let (started, budget) = (Instant::now(), budget());
    let mut cases = 0u64;
    while started.elapsed() < budget {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let input = tree.current();
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(panic) => Some(format!("panicked: {}", panic_text(&panic))),
        };
        if let Some(why) = failure {
            let saved = save(target, cases, &input);
            panic!(
                "fuzz target {target} failed on case {cases} (FUZZ_SEED={seed}): {why}\ninput: {input:?}\nsaved: {saved}"
            );
        }
        cases += 1;
    }
    println!(
        "fuzz: {target} = {cases} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    cases
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// Writes a failing input where a regression test can pick it up; where it went.
fn save(target: &str, case: u64, input: &impl Debug) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-crashes");
    let path = dir.join(format!("{target}-{case}.txt"));
    let written =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, format!("{input:#?}\n")));
    match written {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("not saved ({e})"),
    }
}

/// One edit of a text: where (a fraction of its length), what, and the text it brings.
#[derive(Clone, Debug)]
enum Edit {
    Delete { at: u16, len: u8 },
    Insert { at: u16, text: String },
    Repeat { at: u16, len: u8 },
    Truncate { at: u16 },
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop_oneof![
        "\\PC{0,8}",
        Just("\"".to_string()),
        Just("<".to_string()),
        Just("{".to_string()),
        Just("\n".to_string()),
        Just(",".to_string()),
        Just("\u{0}".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
    ];
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<u16>(), text).prop_map(|(at, text)| Edit::Insert { at, text }),
        (any::<u16>(), any::<u8>()).prop_map(|(at, len)| Edit::Repeat { at, len }),
        any::<u16>().prop_map(|at| Edit::Truncate { at }),
    ]
}

/// The char index `at` (a fraction of `u16::MAX`) points to in a text of `n` chars.
fn place(at: u16, n: usize) -> usize {
    (at as usize * n) / (u16::MAX as usize + 1)
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    match edit {
        Edit::Delete { at, len } => {
            let from = place(*at, n);
            let to = (from + *len as usize % 16).min(n);
            chars.drain(from..to);
        }
        Edit::Insert { at, text } => {
            let from = place(*at, n + 1);
            chars.splice(from..from, text.chars());
        }
        Edit::Repeat { at, len } => {
            let from = place(*at, n);
            let to = (from + *len as usize).min(n);
            let copy: Vec<char> = chars[from..to].to_vec();
            chars.splice(to..to, copy);
        }
        Edit::Truncate { at } => chars.truncate(place(*at, n + 1)),
    }
    chars.into_iter().collect()
}

/// Texts made from one of `seeds` by up to 6 random edits (deletions, insertions of random or
/// syntax-breaking text, repeats, truncation), and now and then a random text of its own.
pub fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    let edited = (
        proptest::sample::select(seeds),
        proptest::collection::vec(edit(), 0..6),
    )
        .prop_map(|(seed, edits)| edits.iter().fold(seed, |text, e| apply(&text, e)));
    prop_oneof![9 => edited, 1 => "\\PC{0,200}"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_stay_inside_the_text() {
        let text = "héllo";
        for at in [0, 1, u16::MAX / 2, u16::MAX] {
            for e in [
                Edit::Delete { at, len: 200 },
                Edit::Insert {
                    at,
                    text: "ü".into(),
                },
                Edit::Repeat { at, len: 200 },
                Edit::Truncate { at },
            ] {
                let out = apply(text, &e);
                assert!(
                    out.chars().count() <= 2 * text.chars().count() + 1,
                    "{e:?}: {out}"
                );
            }
        }
        assert_eq!(apply(text, &Edit::Truncate { at: 0 }), "");
        assert_eq!(apply(text, &Edit::Truncate { at: u16::MAX }), "héllo");
    }

    #[test]
    #[should_panic(expected = "fuzz target refuses-long failed")]
    fn a_refused_input_stops_the_run_and_names_it() {
        run("refuses-long", "[a-z]{0,40}", |s| {
            if s.len() > 30 {
                Err("too long".into())
            } else {
                Ok(())
            }
        });
    }
}
