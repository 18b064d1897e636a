//! Expectation suites in Great Expectations' JSON: read in the 1.x spelling (`name`,
//! `expectations[].type`, `suite_parameters`) or the 0.x one (`expectation_suite_name`,
//! `expectation_type`, `evaluation_parameters`); always written in the 1.x spelling.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use kiln_core::{Error, Result};

pub use kiln_core::contracts::validate::ExpectationConfig;

/// An expectation suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    pub name: String,
    pub expectations: Vec<ExpectationConfig>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub suite_parameters: Map<String, Value>,
    #[serde(default)]
    pub meta: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Value>,
}

impl Suite {
    /// Parses a suite; errors name the file and, for malformed JSON, line and column.
    pub fn parse(text: &str, uri: &str) -> Result<Suite> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            Error::usage(format!(
                "suite {uri}: malformed JSON at line {} column {}: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ))
        })?;
        let Value::Object(mut root) = value else {
            return Err(Error::usage(format!("suite {uri}: expected a JSON object")));
        };
        let bad = |message: String| Error::usage(format!("suite {uri}: {message}"));
        // 0.x names → 1.x names.
        if let Some(name) = root.remove("expectation_suite_name") {
            root.entry("name").or_insert(name);
        }
        if let Some(params) = root.remove("evaluation_parameters") {
            root.entry("suite_parameters").or_insert(params);
        }
        root.remove("data_asset_type");
        root.remove("ge_cloud_id");
        let expectations = match root.get_mut("expectations") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err(bad("`expectations` must be a list".into())),
            None => return Err(bad("no `expectations` list".into())),
        };
        for (i, item) in expectations.iter_mut().enumerate() {
            let Value::Object(map) = item else {
                return Err(bad(format!("expectations[{i}] must be an object")));
            };
            if let Some(kind) = map.remove("expectation_type") {
                map.entry("type").or_insert(kind);
            }
            map.remove("ge_cloud_id");
            map.remove("rendered_content");
            map.remove("description");
            map.entry("kwargs")
                .or_insert_with(|| Value::Object(Map::new()));
        }
        root.entry("name")
            .or_insert_with(|| Value::String("suite".into()));
        let mut suite: Suite = serde_path_to_error(Value::Object(root)).map_err(bad)?;
        suite.substitute_parameters().map_err(bad)?;
        Ok(suite)
    }

    /// The suite in GE 1.x JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Replaces `{"$PARAMETER": "name"}` kwargs with the suite parameter of that name.
    fn substitute_parameters(&mut self) -> std::result::Result<(), String> {
        for (i, expectation) in self.expectations.iter_mut().enumerate() {
            for (key, value) in expectation.kwargs.iter_mut() {
                substitute(value, &self.suite_parameters).map_err(|e| {
                    format!("expectations[{i}] ({}) `{key}`: {e}", expectation.kind)
                })?;
            }
        }
        Ok(())
    }
}

fn substitute(value: &mut Value, params: &Map<String, Value>) -> std::result::Result<(), String> {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("$PARAMETER") => {
            let name = map["$PARAMETER"].as_str().unwrap_or_default().to_string();
            *value = params
                .get(&name)
                .cloned()
                .ok_or_else(|| format!("suite parameter `{name}` is not defined"))?;
        }
        Value::Object(map) => {
            for v in map.values_mut() {
                substitute(v, params)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                substitute(v, params)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn serde_path_to_error(value: Value) -> std::result::Result<Suite, String> {
    serde_json::from_value::<Suite>(value).map_err(|e| e.to_string())
}

/// serde_json appends " at line L column C"; the message says it already.
fn strip_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_0x_spelling_and_writes_1x() {
        let text = r#"{
            "expectation_suite_name": "old",
            "evaluation_parameters": {"lo": 3},
            "data_asset_type": null,
            "expectations": [
                {"expectation_type": "expect_column_values_to_be_between",
                 "kwargs": {"column": "a", "min_value": {"$PARAMETER": "lo"}},
                 "meta": {"severity": "warning"}}
            ]
        }"#;
        let suite = Suite::parse(text, "s.json").unwrap();
        assert_eq!(suite.name, "old");
        let e = &suite.expectations[0];
        assert_eq!(e.kind, "expect_column_values_to_be_between");
        assert_eq!(e.kwargs["min_value"], 3);
        assert!(e.is_warning());
        let out: Value = serde_json::from_str(&suite.to_json()).unwrap();
        assert_eq!(out["name"], "old");
        assert_eq!(
            out["expectations"][0]["type"],
            "expect_column_values_to_be_between"
        );
        assert!(out["expectations"][0].get("expectation_type").is_none());
        let again = Suite::parse(&suite.to_json(), "s.json").unwrap();
        assert_eq!(again, suite);
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = Suite::parse(
            "{\n  \"name\": \"x\",\n  \"expectations\": [,]\n}",
            "s.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("suite s.json: malformed JSON at line 3 column 20: expected value"),
            "{err}"
        );
    }

    #[test]
    fn undefined_parameter_is_an_error() {
        let text = r#"{"name": "s", "expectations": [{"type": "expect_column_to_exist",
            "kwargs": {"column": {"$PARAMETER": "nope"}}}]}"#;
        let err = Suite::parse(text, "s.json").unwrap_err().to_string();
        assert!(
            err.contains("suite parameter `nope` is not defined"),
            "{err}"
        );
    }
}
