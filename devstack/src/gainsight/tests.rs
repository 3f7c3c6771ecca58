//! Unit tests of the emulator's parts.
use super::*;

#[test]
fn expressions_follow_and_over_or_and_parentheses() {
    let truth: BTreeMap<String, bool> = [
        ("A".to_string(), true),
        ("B".to_string(), false),
        ("C".to_string(), true),
    ]
    .into();
    assert!(evaluate("A AND B OR C", &truth).unwrap());
    assert!(evaluate("A AND (B OR NOT_THERE)", &truth).is_err());
    assert!(!evaluate("A AND (B OR B)", &truth).unwrap());
    assert!(evaluate("(A", &truth).is_err());
}
