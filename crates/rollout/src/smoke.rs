//! The deploy workflow's smoke test: an Open Inference Protocol (V2) request against
//! the newly deployed revision, retried until that revision answers. The request is
//! built from KServe V1 records (`{"instances": [{column: value, …}]}`) and the
//! model's own V2 metadata (each input's name and datatype), so it follows the model.
//!
//! Passes when `POST /v2/models/{model}/infer` answers 200 with `model_version` equal
//! to the expected version and one output value per record.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::{Result, RolloutError, error_chain};

/// What to smoke-test.
#[derive(Debug, Clone)]
pub struct Smoke {
    /// The server or gateway (`http://host:port`).
    pub url: String,
    /// A `Host` header (an Istio ingress gateway routes by it).
    pub host: Option<String>,
    pub model: String,
    pub expect_version: Option<String>,
    /// V1 records.
    pub instances: Vec<Value>,
    pub timeout: Duration,
}

/// V2 inputs, one tensor per model input, from V1 records and V2 metadata.
pub fn v2_request(metadata: &Value, instances: &[Value]) -> std::result::Result<Value, String> {
    let inputs = metadata["inputs"]
        .as_array()
        .ok_or("the model's metadata lists no inputs")?;
    let mut tensors = Vec::new();
    for input in inputs {
        let name = input["name"].as_str().ok_or("an input without a name")?;
        let datatype = input["datatype"].as_str().unwrap_or("BYTES");
        let mut data = Vec::new();
        for (i, record) in instances.iter().enumerate() {
            let value = record
                .get(name)
                .ok_or_else(|| format!("instances[{i}] has no `{name}`, an input of the model"))?;
            data.push(value.clone());
        }
        tensors.push(
            json!({"name": name, "datatype": datatype, "shape": [instances.len()], "data": data}),
        );
    }
    Ok(json!({"id": "kiln-smoke", "inputs": tensors}))
}

/// Reads V1 records from a file (`{"instances": [...]}`).
pub fn read_instances(path: &std::path::Path) -> Result<Vec<Value>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| RolloutError::Usage(format!("{file}: cannot read: {e}")))?;
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| RolloutError::Usage(format!("{file}: not JSON: {e}")))?;
    match body["instances"].as_array() {
        Some(rows) if !rows.is_empty() && rows.iter().all(Value::is_object) => Ok(rows.clone()),
        _ => Err(RolloutError::Usage(format!(
            "{file}: instances: expected a non-empty list of records ({{column: value}})"
        ))),
    }
}

enum Attempt {
    Passed(String),
    /// Worth retrying (not up yet, the old revision still answering).
    Retry(String),
    Failed(String),
}

impl Smoke {
    /// Tries until it passes or `timeout` runs out; returns the line that says so.
    pub async fn run(&self) -> Result<String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| RolloutError::Usage(format!("HTTP client: {e}")))?;
        let deadline = Instant::now() + self.timeout;
        let mut reachable = false;
        loop {
            let last = match self.attempt(&http, &mut reachable).await {
                Attempt::Passed(line) => return Ok(line),
                Attempt::Failed(why) => return Err(self.failed(why)),
                Attempt::Retry(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(if reachable {
                    self.failed(format!("after {:?}: {last}", self.timeout))
                } else {
                    RolloutError::Unreachable {
                        url: self.url.clone(),
                        message: last,
                    }
                });
            }
            tracing::info!("smoke: {last}; retrying");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    fn failed(&self, why: String) -> RolloutError {
        let summary = format!("smoke test of {} at {} failed: {why}", self.model, self.url);
        RolloutError::NotPromoted {
            summary,
            failures: vec![why],
        }
    }

    fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let mut request = http.request(method, url);
        if let Some(host) = &self.host {
            request = request.header(reqwest::header::HOST, host);
        }
        request
    }

    async fn attempt(&self, http: &reqwest::Client, reachable: &mut bool) -> Attempt {
        let path = format!("/v2/models/{}", self.model);
        let metadata = match self.request(http, reqwest::Method::GET, &path).send().await {
            Err(e) => return Attempt::Retry(format!("GET {path}: {}", error_chain(&e))),
            Ok(r) => {
                *reachable = true;
                if !r.status().is_success() {
                    return Attempt::Retry(format!("GET {path}: HTTP {}", r.status().as_u16()));
                }
                let text = r.text().await.unwrap_or_default();
                match serde_json::from_str::<Value>(&text) {
                    Ok(v) => v,
                    Err(e) => return Attempt::Failed(format!("GET {path}: not JSON: {e}")),
                }
            }
        };
        let body = match v2_request(&metadata, &self.instances) {
            Ok(b) => b,
            Err(e) => return Attempt::Failed(e),
        };
        let infer = format!("{path}/infer");
        let response = match self
            .request(http, reqwest::Method::POST, &infer)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
        {
            Err(e) => return Attempt::Retry(format!("POST {infer}: {}", error_chain(&e))),
            Ok(r) => r,
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        match status {
            200 => {}
            404 | 502 | 503 | 504 => return Attempt::Retry(format!("POST {infer}: HTTP {status}")),
            _ => {
                let text: String = text.chars().take(300).collect();
                return Attempt::Failed(format!("POST {infer}: HTTP {status}: {text}"));
            }
        }
        let reply: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return Attempt::Failed(format!("POST {infer}: not JSON: {e}")),
        };
        let version = reply["model_version"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(expected) = &self.expect_version
            && &version != expected
        {
            return Attempt::Retry(format!(
                "version {version} answered, waiting for {expected} (the new revision)"
            ));
        }
        let rows = self.instances.len();
        let complete = reply["outputs"].as_array().is_some_and(|outputs| {
            !outputs.is_empty()
                && outputs
                    .iter()
                    .all(|o| o["data"].as_array().is_some_and(|d| d.len() == rows))
        });
        if !complete {
            return Attempt::Failed(format!(
                "POST {infer}: outputs do not hold {rows} values each: {text}"
            ));
        }
        Attempt::Passed(format!(
            "smoke test passed: {} version {version} at {} scored {rows} rows over V2",
            self.model, self.url
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_request_follows_the_models_inputs() {
        let metadata = json!({"inputs": [{"name": "age", "datatype": "INT64", "shape": [-1]}, {"name": "sex", "datatype": "BYTES", "shape": [-1]}]});
        let rows = vec![
            json!({"age": 39, "sex": "Male", "extra": 1}),
            json!({"age": 50, "sex": "Female"}),
        ];
        assert_eq!(
            v2_request(&metadata, &rows).unwrap(),
            json!({"id": "kiln-smoke", "inputs": [
                {"name": "age", "datatype": "INT64", "shape": [2], "data": [39, 50]},
                {"name": "sex", "datatype": "BYTES", "shape": [2], "data": ["Male", "Female"]}
            ]})
        );
        let e = v2_request(&metadata, &[json!({"age": 1})]).unwrap_err();
        assert_eq!(e, "instances[0] has no `sex`, an input of the model");
    }
}
