//! Topic configuration diff: from the desired configuration and Kafka's current one to the
//! `IncrementalAlterConfigs` operations that turn the second into the first. Pure: no I/O.
//!
//! What "current" means: only the topic's own overrides (config entries whose source is
//! `DYNAMIC_TOPIC_CONFIG`). Values Kafka reports from broker or static defaults are not part of
//! the topic and must not be passed in; otherwise every default would look like a key to delete.
//! Consequently a desired value that happens to equal the broker default is still set as an
//! override: the declared value must survive a later change of the broker default.
//!
//! Values are compared after [`normalise_config_value`], so spellings Kafka treats as equal
//! (`" 1000"`, `"+1000"`, `"TRUE"`, `"compact, delete"`) do not cause endless re-applies or
//! false conflicts. Operations carry the desired value trimmed, not normalised: Kafka parses it.

use std::collections::BTreeSet;

use super::model::Configs;

/// One `IncrementalAlterConfigs` operation on a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// `SET` key to value.
    Set(String, String),
    /// `DELETE` the override, falling back to the broker default.
    Delete(String),
}

impl ConfigOp {
    /// The configuration key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            ConfigOp::Set(key, _) | ConfigOp::Delete(key) => key,
        }
    }
}

/// The canonical form of a configuration value, used only to compare values.
///
/// Kafka parses values before storing them and prints them back in its own way: it trims
/// whitespace, reads booleans case-insensitively, reads numbers, and joins list elements with a
/// bare comma. Canonicalising both sides the same way makes equal values compare equal.
pub fn normalise_config_value(raw: &str) -> String {
    let trimmed = raw.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        return "true".to_owned();
    }
    if trimmed.eq_ignore_ascii_case("false") {
        return "false".to_owned();
    }
    if let Some(number) = canonical_number(trimmed) {
        return number;
    }
    if trimmed.contains(',') {
        return trimmed
            .split(',')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(",");
    }
    trimmed.to_owned()
}

/// Integers print without sign or leading zeros; decimals print as the shortest form of their
/// `f64` value, so `1.0`, `1` and `1E0` agree. Anything that is not plainly a number (including
/// `NaN` and `Infinity`, which Rust would parse) stays as it is.
fn canonical_number(value: &str) -> Option<String> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    if digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(integer) = value.parse::<i128>()
    {
        return Some(integer.to_string());
    }
    let numeric = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !numeric {
        return None;
    }
    let float = value.parse::<f64>().ok().filter(|f| f.is_finite())?;
    // `-0.0` and `0.0` are the same setting.
    Some(if float == 0.0 {
        "0".to_owned()
    } else {
        float.to_string()
    })
}

/// Whether two values mean the same setting.
pub fn config_values_equal(a: &str, b: &str) -> bool {
    a == b || normalise_config_value(a) == normalise_config_value(b)
}

/// The operations that turn `current` (Kafka's topic-level overrides) into `desired`, in key
/// order: `Set` for keys missing or different, `Delete` for overrides not desired. Keys whose
/// values are equal after normalising produce nothing.
pub fn config_ops(desired: &Configs, current: &Configs) -> Vec<ConfigOp> {
    let keys: BTreeSet<&String> = desired.keys().chain(current.keys()).collect();
    keys.into_iter()
        .filter_map(|key| match (desired.get(key), current.get(key)) {
            (Some(want), Some(have)) if config_values_equal(want, have) => None,
            (Some(want), _) => Some(ConfigOp::Set(key.clone(), want.trim().to_owned())),
            (None, Some(_)) => Some(ConfigOp::Delete(key.clone())),
            (None, None) => None,
        })
        .collect()
}

/// Whether two configurations are the same setting for setting.
pub fn configs_equivalent(a: &Configs, b: &Configs) -> bool {
    a.len() == b.len()
        && a.iter().all(|(key, value)| {
            b.get(key)
                .is_some_and(|other| config_values_equal(value, other))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn config(entries: &[(&str, &str)]) -> Configs {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[rstest]
    #[case::surrounding_whitespace(" 1000 ", "1000")]
    #[case::plus_sign("+1000", "1000")]
    #[case::leading_zeros("007", "7")]
    #[case::negative_zero("-0", "0")]
    #[case::negative("-1", "-1")]
    #[case::boolean_upper("TRUE", "true")]
    #[case::boolean_mixed("False", "false")]
    #[case::decimal_trailing_zero("0.50", "0.5")]
    #[case::decimal_that_is_whole("1.0", "1")]
    #[case::java_scientific("1.0E-4", "0.0001")]
    #[case::list_with_spaces("compact, delete", "compact,delete")]
    #[case::plain_string("lz4", "lz4")]
    #[case::not_a_number_stays("NaN", "NaN")]
    #[case::infinity_stays("Infinity", "Infinity")]
    #[case::version_like_string("3.0-IV1", "3.0-IV1")]
    fn normalises_values_as_kafka_reads_them(#[case] raw: &str, #[case] expected: &str) {
        assert_eq!(normalise_config_value(raw), expected);
    }

    #[test]
    fn integer_too_large_for_i128_still_compares_by_value() {
        let huge = "1".repeat(50);
        assert!(config_values_equal(&huge, &format!("+{huge}")));
    }

    #[test]
    fn equal_configs_need_no_operation() {
        let both = config(&[("retention.ms", "1000"), ("cleanup.policy", "compact")]);
        assert_eq!(config_ops(&both, &both), vec![]);
    }

    #[test]
    fn differently_spelled_equal_values_need_no_operation() {
        let desired = config(&[
            ("retention.ms", " 1000"),
            ("unclean.leader.election.enable", "TRUE"),
        ]);
        let current = config(&[
            ("retention.ms", "1000"),
            ("unclean.leader.election.enable", "true"),
        ]);
        assert_eq!(config_ops(&desired, &current), vec![]);
    }

    #[test]
    fn changed_added_and_removed_keys_become_set_and_delete_in_key_order() {
        let desired = config(&[("retention.ms", " 2000 "), ("segment.bytes", "1048576")]);
        let current = config(&[("cleanup.policy", "compact"), ("retention.ms", "1000")]);
        assert_eq!(
            config_ops(&desired, &current),
            vec![
                ConfigOp::Delete("cleanup.policy".into()),
                ConfigOp::Set("retention.ms".into(), "2000".into()),
                ConfigOp::Set("segment.bytes".into(), "1048576".into()),
            ]
        );
    }

    #[test]
    fn emptying_the_desired_config_deletes_every_override() {
        let current = config(&[("a", "1"), ("b", "2")]);
        let ops = config_ops(&Configs::new(), &current);
        assert_eq!(
            ops,
            vec![ConfigOp::Delete("a".into()), ConfigOp::Delete("b".into())]
        );
        assert_eq!(ops[1].key(), "b");
    }

    #[test]
    fn equivalence_ignores_spelling_but_not_keys_or_values() {
        let a = config(&[("x", "1.0"), ("y", "TRUE")]);
        assert!(configs_equivalent(
            &a,
            &config(&[("x", "1"), ("y", "true")])
        ));
        assert!(!configs_equivalent(
            &a,
            &config(&[("x", "2"), ("y", "true")])
        ));
        assert!(!configs_equivalent(&a, &config(&[("x", "1")])));
        assert!(!configs_equivalent(
            &a,
            &config(&[("x", "1"), ("z", "true")])
        ));
    }
}
