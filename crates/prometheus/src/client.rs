//! The client: instant queries, with two tries.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::{PrometheusError, Result};

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<QueryData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

impl PrometheusClient {
    /// `url` is Prometheus's base URL (`http://host:9090`; a bare `host:port` is taken as http).
    pub fn new(url: &str) -> Result<PrometheusClient> {
        let base = if url.contains("://") {
            url.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", url.trim_end_matches('/'))
        };
        url::Url::parse(&base)
            .map_err(|e| PrometheusError::Usage(format!("--prometheus `{url}`: not a URL: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| PrometheusError::Usage(format!("HTTP client: {e}")))?;
        Ok(PrometheusClient { base, http })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// An instant query; the result must be a vector (or a scalar, as one sample).
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>> {
        let endpoint = format!("{}/api/v1/query", self.base);
        let mut last = String::new();
        // Two tries: a restart or a dropped connection is not worth failing a check for.
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let response = match self
                .http
                .get(&endpoint)
                .query(&[("query", promql)])
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    last = error_chain(&e);
                    continue;
                }
            };
            let status = response.status();
            if status.is_server_error() && status.as_u16() != 500 {
                last = format!("HTTP {status}");
                continue;
            }
            let body = response
                .text()
                .await
                .map_err(|e| PrometheusError::Unreachable {
                    url: self.base.clone(),
                    message: error_chain(&e),
                })?;
            return self.parse(promql, status.as_u16(), &body);
        }
        Err(PrometheusError::Unreachable {
            url: self.base.clone(),
            message: last,
        })
    }

    fn parse(&self, promql: &str, status: u16, body: &str) -> Result<Vec<Sample>> {
        let api = |message: String| PrometheusError::Api {
            url: self.base.clone(),
            message,
        };
        let envelope: Envelope = serde_json::from_str(body)
            .map_err(|e| api(format!("HTTP {status}: not the query API's JSON: {e}")))?;
        if envelope.status != "success" {
            return Err(api(format!(
                "query `{promql}` failed: {}",
                envelope.error.unwrap_or_else(|| format!("HTTP {status}"))
            )));
        }
        let data = envelope
            .data
            .ok_or_else(|| api("a success without `data`".into()))?;
        match data.result_type.as_str() {
            "vector" => {
                let items: Vec<VectorItem> = serde_json::from_value(data.result)
                    .map_err(|e| api(format!("a vector result that does not parse: {e}")))?;
                Ok(items
                    .into_iter()
                    .map(|item| Sample {
                        labels: item.metric,
                        value: parse_value(&item.value.1),
                    })
                    .collect())
            }
            "scalar" => {
                let (_, value): (f64, String) = serde_json::from_value(data.result)
                    .map_err(|e| api(format!("a scalar result that does not parse: {e}")))?;
                Ok(vec![Sample {
                    labels: BTreeMap::new(),
                    value: parse_value(&value),
                }])
            }
            other => Err(api(format!(
                "query `{promql}` returned a {other}, not an instant vector"
            ))),
        }
    }

    /// The one value of a query that selects at most one series; `None` without data.
    pub async fn value(&self, promql: &str) -> Result<Option<f64>> {
        Ok(self.query(promql).await?.first().map(|s| s.value))
    }
}

/// Prometheus writes values as strings, with `NaN`, `+Inf` and `-Inf` spelled out.
fn parse_value(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

/// An error and its causes on one line (reqwest hides the useful part in the chain).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}
