//! The two patch formats the Kubernetes API takes for a custom resource, applied to a
//! document locally: a JSON merge patch (RFC 7386) and a JSON patch (RFC 6902: `add`,
//! `remove`, `replace`, `test`). `kiln rollout patches` uses them to show the resource
//! each patch produces, so it can be checked against the CRD before anything is sent.

use serde_json::Value;

/// Applies a JSON merge patch: objects merge key by key, `null` removes a key, any
/// other value (arrays included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let object = target.as_object_mut().expect("made an object above");
    for (key, value) in fields {
        if value.is_null() {
            object.remove(key);
        } else {
            merge_patch(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Applies a JSON patch; the first failing operation is named and nothing is changed.
pub fn json_patch(target: &mut Value, operations: &Value) -> Result<(), String> {
    let ops = operations
        .as_array()
        .ok_or("a JSON patch is an array of operations")?;
    let mut doc = target.clone();
    for (i, op) in ops.iter().enumerate() {
        let name = op["op"].as_str().unwrap_or_default();
        let path = op["path"]
            .as_str()
            .ok_or_else(|| format!("operation {i}: no path"))?;
        let fail = |m: &str| format!("operation {i} ({name} {path}): {m}");
        let (parent, last) = split(path).map_err(|m| fail(&m))?;
        match name {
            "test" => {
                if doc.pointer(path) != Some(&op["value"]) {
                    return Err(fail(&format!(
                        "is {}, not {}",
                        doc.pointer(path).map_or("absent".into(), Value::to_string),
                        op["value"]
                    )));
                }
            }
            "add" | "replace" => {
                let value = op.get("value").ok_or_else(|| fail("no value"))?.clone();
                let container = doc.pointer_mut(&parent).ok_or_else(|| fail("no parent"))?;
                match container {
                    Value::Object(map) => {
                        if name == "replace" && !map.contains_key(&last) {
                            return Err(fail("nothing to replace"));
                        }
                        map.insert(last, value);
                    }
                    Value::Array(items) => {
                        let index = if last == "-" && name == "add" {
                            items.len()
                        } else {
                            last.parse::<usize>().map_err(|_| fail("not an index"))?
                        };
                        match name {
                            "add" if index <= items.len() => items.insert(index, value),
                            "replace" if index < items.len() => items[index] = value,
                            _ => return Err(fail("index out of range")),
                        }
                    }
                    _ => return Err(fail("parent is not an object or array")),
                }
            }
            "remove" => {
                let container = doc.pointer_mut(&parent).ok_or_else(|| fail("no parent"))?;
                let removed = match container {
                    Value::Object(map) => map.remove(&last).is_some(),
                    Value::Array(items) => match last.parse::<usize>() {
                        Ok(index) if index < items.len() => {
                            items.remove(index);
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                };
                if !removed {
                    return Err(fail("nothing to remove"));
                }
            }
            other => return Err(fail(&format!("unsupported op `{other}`"))),
        }
    }
    *target = doc;
    Ok(())
}

/// `/a/b~1c` → (`/a`, `b/c`).
fn split(path: &str) -> Result<(String, String), String> {
    let cut = path
        .rfind('/')
        .ok_or_else(|| "a path starts with /".to_string())?;
    let last = path[cut + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..cut].to_string(), last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // RFC 7386's own example.
        let mut doc = json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["example", "sample"], "content": "This will be unchanged"});
        merge_patch(
            &mut doc,
            &json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": null}, "tags": ["example"]}),
        );
        assert_eq!(
            doc,
            json!({"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"], "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"})
        );
    }

    #[test]
    fn json_patch_tests_then_changes_or_changes_nothing() {
        let mut doc = json!({"spec": {"args": ["--model=a", "--x"]}});
        let ops = json!([
            {"op": "test", "path": "/spec/args/0", "value": "--model=a"},
            {"op": "replace", "path": "/spec/args/0", "value": "--model=b"},
            {"op": "add", "path": "/spec/percent", "value": 10},
            {"op": "add", "path": "/spec/args/-", "value": "--y"},
            {"op": "remove", "path": "/spec/args/1"}
        ]);
        json_patch(&mut doc, &ops).unwrap();
        assert_eq!(
            doc,
            json!({"spec": {"args": ["--model=b", "--y"], "percent": 10}})
        );
        let before = doc.clone();
        let e = json_patch(
            &mut doc,
            &json!([{"op": "replace", "path": "/spec/percent", "value": 1}, {"op": "test", "path": "/spec/args/0", "value": "--model=a"}]),
        )
        .unwrap_err();
        assert_eq!(
            e,
            r#"operation 1 (test /spec/args/0): is "--model=b", not "--model=a""#
        );
        assert_eq!(doc, before);
        assert_eq!(split("/a/b~1c").unwrap(), ("/a".into(), "b/c".into()));
    }
}
