//! Reading a spec: YAML or JSON text → `${VAR}` expansion → `--set` overrides →
//! strict typed parse (errors name the field path and the file) → semantic checks.

use serde_norway::Value;

use super::PipelineSpec;
use crate::error::{Error, Result};
use crate::store::{ObjectRef, resolve_relative};

/// A parsed, checked spec and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The typed spec, after variable expansion and overrides.
    pub spec: PipelineSpec,
    /// The URI the spec was read from; relative paths in it resolve against its folder.
    pub uri: String,
}

impl LoadedSpec {
    /// Reads and checks a spec from a path or URI, applying `key=value` overrides.
    pub async fn load(uri: &str, overrides: &[String]) -> Result<Self> {
        let bytes = match ObjectRef::parse(uri)?.get().await {
            Ok(bytes) => bytes,
            Err(Error::InputNotFound { .. }) => {
                return Err(Error::Spec {
                    file: uri.to_string(),
                    message: "file not found".into(),
                });
            }
            Err(e) => return Err(e),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::Spec {
            file: uri.to_string(),
            message: "not UTF-8 text".into(),
        })?;
        Self::from_text(text, uri, overrides)
    }

    /// Parses spec text; `uri` names the file in errors and anchors relative paths.
    pub fn from_text(text: &str, uri: &str, overrides: &[String]) -> Result<Self> {
        let spec_error = |message: String| Error::Spec {
            file: uri.to_string(),
            message,
        };
        let mut value: Value =
            serde_norway::from_str(text).map_err(|e| spec_error(e.to_string()))?;
        expand_env(&mut value).map_err(spec_error)?;
        for item in overrides {
            apply_override(&mut value, item).map_err(spec_error)?;
        }
        // serde_norway's Value only takes `!tag` enums; JSON's data model takes the
        // `{variant: value}` maps users write, so deserialise through it.
        let value = serde_json::to_value(&value).map_err(|e| spec_error(e.to_string()))?;
        let spec: PipelineSpec = serde_path_to_error::deserialize(value).map_err(|e| {
            let mut path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // For an unknown field the path ends with the field itself; name its parent.
            if let Some(field) = inner
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
                && let Some(parent) = path.strip_suffix(&format!(".{field}"))
            {
                path = parent.to_string();
            }
            if path == "." || path.is_empty() {
                spec_error(inner)
            } else {
                spec_error(format!("{path}: {inner}"))
            }
        })?;
        spec.check().map_err(spec_error)?;
        Ok(LoadedSpec {
            spec,
            uri: uri.to_string(),
        })
    }

    /// Resolves a path named in the spec against the spec file's folder.
    pub fn resolve(&self, target: &str) -> String {
        resolve_relative(&self.uri, target)
    }
}

/// Applies one `dotted.path=value` override; the value is parsed as YAML, so
/// `train.epochs=3` sets a number and `name=x` a string. Numeric segments index lists.
pub fn apply_override(root: &mut Value, item: &str) -> Result<(), String> {
    let (path, raw) = item
        .split_once('=')
        .ok_or_else(|| format!("--set `{item}`: expected KEY=VALUE"))?;
    let new_value: Value =
        serde_norway::from_str(raw).map_err(|e| format!("--set `{item}`: invalid value: {e}"))?;
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!("--set `{item}`: empty key segment"));
    }
    let mut current = root;
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        current = match current {
            Value::Sequence(items) => {
                let index: usize = segment
                    .parse()
                    .map_err(|_| format!("--set `{item}`: `{segment}` must index a list"))?;
                let len = items.len();
                items.get_mut(index).ok_or_else(|| {
                    format!("--set `{item}`: index {index} out of range (list has {len})")
                })?
            }
            Value::Mapping(map) => {
                let key = Value::String((*segment).to_string());
                if !map.contains_key(&key) {
                    let fresh = if last {
                        Value::Null
                    } else {
                        Value::Mapping(Default::default())
                    };
                    map.insert(key.clone(), fresh);
                }
                map.get_mut(&key)
                    .ok_or_else(|| format!("--set `{item}`: cannot set `{segment}`"))?
            }
            Value::Null => {
                *current = Value::Mapping(Default::default());
                let Value::Mapping(map) = current else {
                    unreachable!()
                };
                map.entry(Value::String((*segment).to_string()))
                    .or_insert(Value::Null)
            }
            _ => return Err(format!("--set `{item}`: `{segment}` is inside a scalar")),
        };
    }
    *current = new_value;
    Ok(())
}

/// Expands `${VAR}` and `${VAR:-default}` in every string value.
fn expand_env(value: &mut Value) -> Result<(), String> {
    match value {
        Value::String(text) => {
            if text.contains("${") {
                *text = expand_text(text)?;
            }
            Ok(())
        }
        Value::Sequence(items) => items.iter_mut().try_for_each(expand_env),
        Value::Mapping(map) => map.iter_mut().try_for_each(|(_, v)| expand_env(v)),
        Value::Tagged(tagged) => expand_env(&mut tagged.value),
        _ => Ok(()),
    }
}

fn expand_text(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{text}`"))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        match (std::env::var(name), default) {
            (Ok(v), _) if !v.is_empty() => out.push_str(&v),
            (_, Some(default)) => out.push_str(default),
            _ => {
                return Err(format!(
                    "environment variable `{name}` is not set (in `{text}`)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::DataFormat;
    use super::*;

    const MINIMAL: &str = r#"
name: demo
data:
  format: csv
  sources:
    - uri: data.csv
schema:
  - {name: x, type: float}
  - {name: y, type: string}
label: {column: y, positive: "yes"}
split: {method: hash, test_fraction: 0.25, seed: 1}
transform:
  numeric: [{column: x, standardize: true}]
"#;

    #[test]
    fn minimal_spec_loads_with_defaults() {
        let loaded = LoadedSpec::from_text(MINIMAL, "dir/spec.yaml", &[]).unwrap();
        assert_eq!(loaded.spec.name, "demo");
        assert!(loaded.spec.data.csv.trim);
        assert_eq!(loaded.resolve("data.csv"), "dir/data.csv");
    }

    #[test]
    fn tables_and_a_query_replace_sources_and_are_checked_together() {
        let with = |data: &str| {
            let text = MINIMAL.replace("  format: csv\n  sources:\n    - uri: data.csv\n", data);
            LoadedSpec::from_text(&text, "spec.yaml", &[]).map_err(|e| e.to_string())
        };
        let good = "  tables: {events: {uri: ev/, partitions: [day]}, users: {uri: u.csv}, lake: {uri: lake/t, format: delta, version: 2}}\n  query: SELECT 1\n";
        let loaded = with(good).unwrap();
        let tables = &loaded.spec.data.tables;
        assert_eq!(
            tables["events"].format_or(DataFormat::Parquet),
            DataFormat::Parquet
        );
        assert_eq!(
            tables["users"].format_or(DataFormat::Parquet),
            DataFormat::Csv
        );
        let cases = [
            (
                "  tables: {users: {uri: u.csv}}\n",
                "data.tables.users: tables are read only by data.query",
            ),
            (
                "  query: SELECT 1\n",
                "data.tables: data.query needs at least one table",
            ),
            (
                "  tables: {Users: {uri: u.csv}}\n  query: SELECT 1\n",
                "data.tables.Users: a table name must be",
            ),
            (
                "  sources: [{uri: a.csv}]\n  tables: {u: {uri: u.csv}}\n  query: SELECT 1\n",
                "data.sources: not read when data.query is given",
            ),
            (
                "  tables: {u: {uri: u.parquet, schema: [{name: a, type: int}]}}\n  query: SELECT 1\n",
                "data.tables.u.schema: only for CSV tables",
            ),
            (
                "  tables: {u: {uri: u.csv}}\n  query: '  '\n",
                "data.query: empty query",
            ),
            ("  format: csv\n", "data.sources: name at least one file"),
            (
                "  tables: {u: {uri: lake/u, format: delta, partitions: [day]}}\n  query: SELECT 1\n",
                "data.tables.u.partitions: a Delta table's partitions come from its log",
            ),
            (
                "  tables: {u: {uri: u.parquet, version: 3}}\n  query: SELECT 1\n",
                "data.tables.u.version: only a Delta table has versions",
            ),
            (
                "  format: delta\n  sources: [{uri: lake/u}]\n",
                "data.format: a Delta table is read through data.tables",
            ),
        ];
        for (data, expected) in cases {
            let err = with(data).unwrap_err();
            assert!(err.contains(expected), "{data}: {err}");
        }
        let files = MINIMAL
            .replace("  format: csv\n  sources:\n    - uri: data.csv\n", good)
            .replace(
                "{method: hash, test_fraction: 0.25, seed: 1}",
                "{method: files}",
            );
        let err = LoadedSpec::from_text(&files, "spec.yaml", &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("split.method: `files` splits by source file"),
            "{err}"
        );
        // Without tables and query, a spec serialises (and so fingerprints) as before.
        let plain = LoadedSpec::from_text(MINIMAL, "spec.yaml", &[]).unwrap();
        let data = serde_json::to_value(&plain.spec.data).unwrap();
        assert!(
            data.get("tables").is_none() && data.get("query").is_none(),
            "{data}"
        );
    }

    #[test]
    fn unknown_field_names_field_path_and_file() {
        let text = MINIMAL.replace("standardize: true", "standardise: true");
        let err = LoadedSpec::from_text(&text, "dir/spec.yaml", &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("spec dir/spec.yaml: transform.numeric[0]"),
            "{msg}"
        );
        assert!(msg.contains("unknown field `standardise`"), "{msg}");
        assert_eq!(err.class().code(), 2);
    }

    #[test]
    fn a_misspelt_metric_name_fails_when_the_spec_loads() {
        let text =
            format!("{MINIMAL}registry:\n  model_name: m\n  min_metrics: {{roc_acu: 0.8}}\n");
        let err = LoadedSpec::from_text(&text, "dir/spec.yaml", &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("spec dir/spec.yaml: registry.min_metrics"),
            "{msg}"
        );
        assert!(msg.contains("roc_acu") && msg.contains("roc_auc"), "{msg}");
        assert_eq!(err.class().code(), 2);
        let text = text.replace("roc_acu", "roc_auc");
        let loaded = LoadedSpec::from_text(&text, "dir/spec.yaml", &[]).unwrap();
        let registry = loaded.spec.registry.unwrap();
        assert_eq!(
            registry.min_metrics[&super::super::ModelMetric::RocAuc],
            0.8
        );
    }

    #[test]
    fn overrides_set_nested_values_and_list_items() {
        let overrides = vec![
            "split.seed=9".to_string(),
            "transform.numeric.0.log1p=true".to_string(),
        ];
        let loaded = LoadedSpec::from_text(MINIMAL, "s.yaml", &overrides).unwrap();
        match loaded.spec.split {
            super::super::SplitSpec::Hash { seed, .. } => assert_eq!(seed, 9),
            other => panic!("unexpected split {other:?}"),
        }
        assert!(loaded.spec.transform.numeric[0].log1p);
        let err = LoadedSpec::from_text(MINIMAL, "s.yaml", &["nonsense".into()]).unwrap_err();
        assert!(err.to_string().contains("expected KEY=VALUE"));
        let err = LoadedSpec::from_text(MINIMAL, "s.yaml", &["transform.numeric.4.log1p=1".into()])
            .unwrap_err();
        assert!(err.to_string().contains("index 4 out of range"), "{err}");
    }

    #[test]
    fn environment_variables_expand_with_defaults() {
        let text = MINIMAL.replace(
            "uri: data.csv",
            "uri: ${KILN_TEST_UNSET_VAR:-fallback}/data.csv",
        );
        let loaded = LoadedSpec::from_text(&text, "s.yaml", &[]).unwrap();
        assert_eq!(loaded.spec.data.sources[0].uri, "fallback/data.csv");
        let text = MINIMAL.replace("uri: data.csv", "uri: ${KILN_TEST_UNSET_VAR}/data.csv");
        let err = LoadedSpec::from_text(&text, "s.yaml", &[]).unwrap_err();
        assert!(
            err.to_string().contains("`KILN_TEST_UNSET_VAR` is not set"),
            "{err}"
        );
    }

    #[test]
    fn fingerprint_tracks_only_the_named_sections() {
        let a = LoadedSpec::from_text(MINIMAL, "s.yaml", &[]).unwrap().spec;
        let b = LoadedSpec::from_text(MINIMAL, "s.yaml", &["name=other".into()])
            .unwrap()
            .spec;
        assert_eq!(
            a.fingerprint(&["data", "split"]),
            b.fingerprint(&["data", "split"])
        );
        assert_ne!(a.fingerprint(&["name"]), b.fingerprint(&["name"]));
    }

    #[test]
    fn json_schema_is_generated() {
        let schema = PipelineSpec::json_schema();
        assert!(schema["properties"]["transform"].is_object(), "{schema}");
        assert_eq!(
            schema["additionalProperties"],
            serde_json::Value::Bool(false)
        );
    }
}
