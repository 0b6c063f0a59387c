//! A small map type for the maps Oxbow holds per topic by the thousand. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A map from `String` keys, in key order, each key once: a sorted vector.
///
/// For the small maps held per topic by the thousand (a topic's configuration: often one key or
/// none) instead of a `BTreeMap`, whose first entry allocates a whole node of eleven slots
/// (about 550 to 650 bytes for `String` keys), while this allocates what it holds. At 10,000
/// topics those nodes were the largest part of the topic operator's heap after the watch cache.
/// Lookups are binary searches; inserts shift, which is fine at these sizes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SortedMap<V>(Vec<(String, V)>);

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        SortedMap(Vec::new())
    }
}

impl<V> SortedMap<V> {
    pub fn new() -> Self {
        SortedMap(Vec::new())
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.position(key).ok().map(|i| self.0.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &V)> + ExactSizeIterator {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k)
    }
}

/// Like a map: when a key comes more than once, the last value wins.
impl<V> FromIterator<(String, V)> for SortedMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut entries: Vec<(String, V)> = iter.into_iter().collect();
        // Stable, so equal keys keep their order and the last one can be kept.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, V)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        out.shrink_to_fit();
        SortedMap(out)
    }
}

impl<V, const N: usize> From<[(String, V); N]> for SortedMap<V> {
    fn from(entries: [(String, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<V> From<BTreeMap<String, V>> for SortedMap<V> {
    fn from(map: BTreeMap<String, V>) -> Self {
        // Already sorted and unique.
        SortedMap(map.into_iter().collect())
    }
}

impl<V> std::ops::Index<&str> for SortedMap<V> {
    type Output = V;
    /// The value of `key`; panics when it is absent, like a map's index.
    fn index(&self, key: &str) -> &V {
        self.get(key)
            .unwrap_or_else(|| panic!("no config key {key:?}"))
    }
}

impl<V> IntoIterator for SortedMap<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, V> IntoIterator for &'a SortedMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, V)>,
        fn(&'a (String, V)) -> (&'a String, &'a V),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<V: fmt::Debug> fmt::Debug for SortedMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize> Serialize for SortedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SortedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, V>::deserialize(deserializer).map(SortedMap::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(entries: &[(&str, &str)]) -> SortedMap<String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn configs_keep_key_order_and_the_last_value_of_a_key() {
        let c = configs(&[("b", "1"), ("a", "2"), ("b", "3"), ("c", "4")]);
        assert_eq!(
            c.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            [("a", "2"), ("b", "3"), ("c", "4")]
        );
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("b").map(String::as_str), Some("3"));
        assert_eq!(c.get("d"), None);
        assert!(c.contains_key("a") && !c.contains_key("d"));
    }

    #[test]
    fn configs_insert_and_remove_like_a_map() {
        let mut c = configs(&[("b", "1")]);
        assert_eq!(c.insert("a".into(), "x".into()), None);
        assert_eq!(c.insert("c".into(), "y".into()), None);
        assert_eq!(c.insert("b".into(), "2".into()), Some("1".into()));
        assert_eq!(c, configs(&[("a", "x"), ("b", "2"), ("c", "y")]));
        assert_eq!(c.remove("b"), Some("2".into()));
        assert_eq!(c.remove("b"), None);
        assert_eq!(c.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn configs_read_and_write_json_as_an_object() {
        let c: SortedMap<String> =
            serde_json::from_str(r#"{"retention.ms":"1000","cleanup.policy":"compact"}"#).unwrap();
        assert_eq!(
            c,
            configs(&[("cleanup.policy", "compact"), ("retention.ms", "1000")])
        );
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"cleanup.policy":"compact","retention.ms":"1000"}"#
        );
        assert_eq!(
            format!("{c:?}"),
            r#"{"cleanup.policy": "compact", "retention.ms": "1000"}"#
        );
    }

    #[test]
    fn json_values_are_kept_as_written() {
        let m: SortedMap<serde_json::Value> =
            serde_json::from_str(r#"{"retention.ms":7200000,"cleanup.policy":"compact"}"#).unwrap();
        assert_eq!(m["retention.ms"], serde_json::json!(7200000));
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"cleanup.policy": "compact", "retention.ms": 7200000})
        );
    }
}
