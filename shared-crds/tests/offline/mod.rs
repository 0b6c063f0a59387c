//! An offline stand-in for the API server's admission of Oxbow resources, for tests that run
//! without a cluster: the OpenAPI checks of the generated CRD schemas (types, enums, bounds,
//! patterns, required fields, set lists), the CEL rules (evaluated by kube-cel, the same rules the
//! server runs), and a list of the fields the server would prune. Paths are written the way the
//! API server writes them (`spec.kafka.listeners[0].port`). May touch: files under the workspace
//! (reading YAML fixtures) only.

#![allow(dead_code)] // each test crate uses part of this module

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One reason the API server would refuse an object.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub path: String,
    pub message: String,
    /// True for a failed CEL rule, whose `message` is part of the server's text.
    pub from_cel: bool,
}

/// What the API server would do with an object.
#[derive(Debug, Default)]
pub struct Admission {
    pub rejections: Vec<Rejection>,
    /// Fields absent from the schema, which the server drops silently.
    pub pruned: Vec<String>,
}

impl Admission {
    /// True if a rejection is the one `expect` describes: the expected text names the rejected
    /// field's path, and for CEL rules its explanation (what follows the server's `Forbidden: `,
    /// `Required value: ` or `Invalid value: "<type>": `) is part of the rule's message.
    pub fn rejects_as(&self, expect: &str) -> bool {
        let explanation = ["Forbidden: ", "Required value: ", "\": "]
            .iter()
            .find_map(|marker| expect.split_once(marker).map(|(_, rest)| rest))
            .unwrap_or(expect);
        self.rejections
            .iter()
            .any(|r| expect.contains(&r.path) && (!r.from_cel || r.message.contains(explanation)))
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `*.yaml` files of a folder, sorted by name.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The documents of a (multi-document) YAML text, as JSON values.
pub fn documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The `openAPIV3Schema` of the CRD of `kind`, as installed.
pub fn schema_of(kind: &str) -> Value {
    let crd = shared_crds::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for kind {kind}"));
    let schema = crd.spec.versions[0]
        .schema
        .clone()
        .unwrap()
        .open_api_v3_schema
        .unwrap();
    serde_json::to_value(schema).unwrap()
}

/// Admission of `object` (created if `old` is None, else updated from `old`).
pub fn admit(object: &Value, old: Option<&Value>) -> Admission {
    let kind = object["kind"].as_str().expect("object has a kind");
    let schema = schema_of(kind);
    let mut admission = Admission::default();
    let root = object.as_object().expect("object is a map");
    for (key, value) in root {
        // The server checks these itself; the derived schema does not describe them.
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match schema["properties"].get(key) {
            Some(sub) => walk(sub, value, key.clone(), &mut admission),
            None => admission.pruned.push(key.clone()),
        }
    }
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap();
        if !root.contains_key(name) {
            reject(&mut admission, name.to_string(), "Required value");
        }
    }
    if let Err(errors) = kube_cel::Validator::new().validate(&schema, object, old) {
        for e in errors {
            admission.rejections.push(Rejection {
                path: e.field_path.trim_start_matches('.').to_string(),
                message: e.message.clone(),
                from_cel: true,
            });
        }
    }
    admission
}

fn reject(admission: &mut Admission, path: String, message: impl Into<String>) {
    admission.rejections.push(Rejection {
        path,
        message: message.into(),
        from_cel: false,
    });
}

fn walk(schema: &Value, value: &Value, path: String, out: &mut Admission) {
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            reject(out, path, "must not be null");
        }
        return;
    }
    let type_ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true, // int-or-string and other untyped schemas
    };
    if !type_ok {
        return reject(
            out,
            path,
            format!("Invalid type, expected {}", schema["type"]),
        );
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        reject(out, path.clone(), format!("Unsupported value: {value}"));
    }
    if let Some(n) = value.as_f64() {
        let exclusive = schema["exclusiveMinimum"].as_bool() == Some(true);
        if let Some(min) = schema["minimum"].as_f64() {
            if exclusive && n <= min {
                reject(out, path.clone(), format!("should be greater than {min}"));
            } else if !exclusive && n < min {
                reject(
                    out,
                    path.clone(),
                    format!("should be greater than or equal to {min}"),
                );
            }
        }
        if let Some(max) = schema["maximum"].as_f64()
            && n > max
        {
            reject(
                out,
                path.clone(),
                format!("should be less than or equal to {max}"),
            );
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|min| len < min) {
            reject(out, path.clone(), "too short");
        }
        if schema["maxLength"].as_u64().is_some_and(|max| len > max) {
            reject(out, path.clone(), "too long");
        }
        if let Some(pattern) = schema["pattern"].as_str()
            && !regex::Regex::new(pattern).unwrap().is_match(s)
        {
            reject(out, path.clone(), format!("should match '{pattern}'"));
        }
    }
    if let Some(items) = value.as_array() {
        let n = items.len() as u64;
        if schema["minItems"].as_u64().is_some_and(|min| n < min) {
            reject(out, path.clone(), "too few items");
        }
        if schema["maxItems"].as_u64().is_some_and(|max| n > max) {
            reject(out, path.clone(), "too many items");
        }
        if schema["x-kubernetes-list-type"] == "set" {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    reject(out, format!("{path}[{i}]"), "Duplicate value");
                }
            }
        }
        for (i, item) in items.iter().enumerate() {
            walk(&schema["items"], item, format!("{path}[{i}]"), out);
        }
    }
    if let Some(map) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !map.contains_key(name) {
                reject(out, format!("{path}.{name}"), "Required value");
            }
        }
        let preserve = schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
        for (key, v) in map {
            if let Some(sub) = schema["properties"].get(key) {
                walk(sub, v, format!("{path}.{key}"), out);
            } else if schema["additionalProperties"].is_object() {
                walk(
                    &schema["additionalProperties"],
                    v,
                    format!("{path}.{key}"),
                    out,
                );
            } else if !preserve {
                out.pruned.push(format!("{path}.{key}"));
            }
        }
    }
}

/// An invalid fixture of `e2e/tests/fixtures/invalid`: the expected rejection text and the
/// documents (one to create; or two: create the first, then update to the second).
pub struct InvalidFixture {
    pub file: PathBuf,
    pub expect: String,
    pub documents: Vec<Value>,
}

/// Every invalid fixture.
pub fn invalid_fixtures() -> Vec<InvalidFixture> {
    let dir = workspace().join("e2e/tests/fixtures/invalid");
    yaml_files(&dir)
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{} must start with `# expect: `", file.display()))
                .trim()
                .to_string();
            let documents = documents(&text);
            InvalidFixture {
                file,
                expect,
                documents,
            }
        })
        .collect()
}
