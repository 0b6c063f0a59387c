//! Reading operator settings from environment variables. Every error names the variable and says
//! what was expected, so a misconfigured Deployment fails fast with an actionable message.
//! May touch: nothing; the environment is passed in as a lookup function for testability.

use std::{fmt::Display, str::FromStr};

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingError {
    #[error("{name} is required but not set")]
    Missing { name: String },
    #[error("{name}={value:?} is invalid: {expected}")]
    Invalid {
        name: String,
        value: String,
        expected: String,
    },
}

impl SettingError {
    /// Stable reason word.
    pub fn reason(&self) -> &'static str {
        match self {
            SettingError::Missing { .. } => "MissingSetting",
            SettingError::Invalid { .. } => "InvalidSetting",
        }
    }
}

/// Reads settings through a lookup function (`std::env::var` in production, a map in tests).
pub struct Settings<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

/// Settings read from the process environment.
pub fn from_env() -> Settings<impl Fn(&str) -> Option<String>> {
    Settings::new(|k| std::env::var(k).ok())
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    pub fn new(lookup: F) -> Self {
        Settings { lookup }
    }

    /// The raw value, treating an empty string as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// A required string.
    pub fn required(&self, name: &str) -> Result<String, SettingError> {
        self.get(name)
            .ok_or_else(|| SettingError::Missing { name: name.into() })
    }

    /// An optional value parsed with `FromStr`, or `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, SettingError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| SettingError::Invalid {
                name: name.into(),
                value: v.clone(),
                expected: e.to_string(),
            }),
        }
    }

    /// An optional value that must be one of `allowed` (compared case-insensitively); returns
    /// the allowed spelling.
    pub fn one_of(
        &self,
        name: &str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, SettingError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(v.trim()))
                .copied()
                .ok_or_else(|| SettingError::Invalid {
                    name: name.into(),
                    value: v.clone(),
                    expected: format!("one of {}", allowed.join(", ")),
                }),
        }
    }
}

/// Settings from fixed name/value pairs instead of the environment: for tests, and for tools
/// that build an operator's configuration themselves.
pub fn map_settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::new(move |k| map.get(k).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_required_setting_names_the_variable() {
        let s = map_settings(&[]);
        let err = s.required("OXBOW_CLUSTER").unwrap_err();
        assert_eq!(err.to_string(), "OXBOW_CLUSTER is required but not set");
        assert_eq!(err.reason(), "MissingSetting");
    }

    #[test]
    fn empty_value_counts_as_unset() {
        let s = map_settings(&[("OXBOW_CLUSTER", "  ")]);
        assert!(matches!(
            s.required("OXBOW_CLUSTER"),
            Err(SettingError::Missing { .. })
        ));
    }

    #[test]
    fn malformed_number_names_variable_and_value() {
        let s = map_settings(&[("OXBOW_KAFKA_POLL_INTERVAL_SECONDS", "ten")]);
        let err = s
            .parse_or("OXBOW_KAFKA_POLL_INTERVAL_SECONDS", 30u64)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("OXBOW_KAFKA_POLL_INTERVAL_SECONDS=\"ten\" is invalid")
        );
        assert_eq!(s.parse_or("UNSET", 30u64).unwrap(), 30);
    }

    #[test]
    fn one_of_accepts_any_case_and_rejects_others() {
        let s = map_settings(&[("A", "json"), ("B", "yaml")]);
        assert_eq!(s.one_of("A", &["text", "json"], "text").unwrap(), "json");
        let err = s.one_of("B", &["text", "json"], "text").unwrap_err();
        assert!(err.to_string().contains("one of text, json"));
        assert_eq!(s.one_of("C", &["text", "json"], "text").unwrap(), "text");
    }
}
