//! The REST client: configuration from MLflow's environment variables, retries with
//! backoff on 429, 5xx and connection errors, and MLflow's error codes as types.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::transport::{CLIENT_TOKEN_TAG, Method, client_token};

mod config;
mod error;
mod registry;

pub use config::{Auth, MlflowConfig, split_credentials};
pub(crate) use error::api_error;
pub use error::{ErrorCode, MlflowError};

type Result<T, E = MlflowError> = std::result::Result<T, E>;

/// A run as MLflow reports it (the fields Kiln reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub status: String,
    pub artifact_uri: String,
}

/// A model version (the fields Kiln reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A key/value tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// One metric value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

/// MLflow's limits for one `runs/log-batch` call.
pub const MAX_BATCH_METRICS: usize = 1000;
pub const MAX_BATCH_PARAMS: usize = 100;
pub const MAX_BATCH_TAGS: usize = 100;
pub const MAX_BATCH_TOTAL: usize = 1000;
/// MLflow's limit on a parameter value.
pub const MAX_PARAM_LENGTH: usize = 6000;

/// A typed async client for MLflow's REST API.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    pub(crate) http: reqwest::Client,
    pub(crate) config: MlflowConfig,
    /// `max_results` of each page of a search (MLflow's own cap is 1000).
    pub(crate) page_size: u32,
}

impl MlflowClient {
    pub fn new(config: MlflowConfig) -> Result<MlflowClient> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| MlflowError::Config(format!("HTTP client: {e}")))?;
        Ok(MlflowClient {
            http,
            config,
            page_size: 1000,
        })
    }

    /// Searches ask for pages of `page_size` results (and follow every page).
    pub fn with_page_size(mut self, page_size: u32) -> MlflowClient {
        self.page_size = page_size.clamp(1, 1000);
        self
    }

    /// A client from the environment; `None` when `MLFLOW_TRACKING_URI` is unset.
    pub fn from_env() -> Result<Option<MlflowClient>> {
        MlflowConfig::from_env()?.map(MlflowClient::new).transpose()
    }

    pub fn tracking_uri(&self) -> &str {
        &self.config.tracking_uri
    }

    // ---- Experiments ----

    /// The experiment id by name, `None` when there is none.
    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Option<String>> {
        match self
            .call(
                Method::Get,
                "experiments/get-by-name",
                json!({"experiment_name": name}),
            )
            .await
        {
            Ok(v) => Ok(v["experiment"]["experiment_id"]
                .as_str()
                .map(str::to_string)),
            Err(e) if e.code() == Some(&ErrorCode::ResourceDoesNotExist) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn create_experiment(&self, name: &str) -> Result<String> {
        let v = self
            .call(Method::Post, "experiments/create", json!({"name": name}))
            .await?;
        string_field(&v, "experiment_id", "experiments/create")
    }

    /// The experiment of that name, created when missing (safe against a concurrent creator).
    pub async fn get_or_create_experiment(&self, name: &str) -> Result<String> {
        if let Some(id) = self.get_experiment_by_name(name).await? {
            return Ok(id);
        }
        match self.create_experiment(name).await {
            Ok(id) => Ok(id),
            Err(e) if e.code() == Some(&ErrorCode::ResourceAlreadyExists) => {
                self.get_experiment_by_name(name).await?.ok_or(e)
            }
            Err(e) => Err(e),
        }
    }

    // ---- Runs ----

    /// Creates a run, once: the request carries a client token tag, and a retry after
    /// a lost reply first looks the run up by it.
    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[(String, String)],
    ) -> Result<RunInfo> {
        let token = client_token();
        let mut tags = key_values(tags);
        tags.push(json!({"key": CLIENT_TOKEN_TAG, "value": token}));
        let body = json!({"experiment_id": experiment_id, "run_name": run_name, "start_time": now_ms(), "tags": tags});
        let v = self
            .create("runs/create", body, || async {
                let filter = format!("tags.`{CLIENT_TOKEN_TAG}` = '{token}'");
                let runs = self.search_runs(experiment_id, &filter).await?;
                Ok(runs.into_iter().next().map(|run| json!({"run": run})))
            })
            .await?;
        run_info(&v, "runs/create")
    }

    /// Runs of an experiment that match an MLflow filter (every page).
    pub async fn search_runs(&self, experiment_id: &str, filter: &str) -> Result<Vec<Value>> {
        self.all_pages(
            Method::Post,
            "runs/search",
            json!({"experiment_ids": [experiment_id], "filter": filter}),
            "runs",
        )
        .await
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Value> {
        let v = self
            .call(Method::Get, "runs/get", json!({"run_id": run_id}))
            .await?;
        Ok(v["run"].clone())
    }

    pub async fn get_run_info(&self, run_id: &str) -> Result<RunInfo> {
        let v = self
            .call(Method::Get, "runs/get", json!({"run_id": run_id}))
            .await?;
        run_info(&v, "runs/get")
    }

    /// Sets a run's status (`RUNNING`, `FINISHED`, `FAILED`, `KILLED`) and, unless
    /// running, its end time.
    pub async fn update_run(&self, run_id: &str, status: &str) -> Result<()> {
        let mut body = json!({"run_id": run_id, "status": status});
        if status != "RUNNING" {
            body["end_time"] = json!(now_ms());
        }
        self.call(Method::Post, "runs/update", body).await.map(drop)
    }

    /// Logs metrics, params and tags, split into batches within MLflow's limits.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<()> {
        let kv = |items: &[(String, String)]| -> Vec<Value> {
            items
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v.chars().take(MAX_PARAM_LENGTH).collect::<String>()}))
                .collect()
        };
        let (params, tags) = (kv(params), kv(tags));
        let metrics: Vec<Value> = metrics.iter().map(|m| json!(m)).collect();
        let (mut m, mut p, mut t) = (metrics.as_slice(), params.as_slice(), tags.as_slice());
        while !(m.is_empty() && p.is_empty() && t.is_empty()) {
            let np = p.len().min(MAX_BATCH_PARAMS);
            let nt = t.len().min(MAX_BATCH_TAGS);
            let nm = m
                .len()
                .min(MAX_BATCH_METRICS)
                .min(MAX_BATCH_TOTAL - np - nt);
            self.call(
                Method::Post,
                "runs/log-batch",
                json!({"run_id": run_id, "metrics": &m[..nm], "params": &p[..np], "tags": &t[..nt]}),
            )
            .await?;
            (m, p, t) = (&m[nm..], &p[np..], &t[nt..]);
        }
        Ok(())
    }

    /// Records dataset inputs of a run (`runs/log-inputs`; each a `DatasetInput` of
    /// MLflow's REST API: `{tags, dataset: {name, digest, source_type, source, ...}}`).
    pub async fn log_inputs(&self, run_id: &str, datasets: &[Value]) -> Result<()> {
        if datasets.is_empty() {
            return Ok(());
        }
        self.call(
            Method::Post,
            "runs/log-inputs",
            json!({"run_id": run_id, "datasets": datasets}),
        )
        .await
        .map(drop)
    }

    /// Uploads one artifact through the tracking server's artifact proxy
    /// (`mlflow server --serve-artifacts`, the default since MLflow 2).
    pub async fn upload_artifact(&self, run: &RunInfo, path: &str, bytes: Bytes) -> Result<()> {
        let root = run.artifact_uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
            MlflowError::Config(format!(
                "run {} stores artifacts at `{}`, which Kiln cannot write through the tracking server: start `mlflow server` with artifact serving (--serve-artifacts, the default since MLflow 2)",
                run.run_id, run.artifact_uri
            ))
        })?;
        let root = root.trim_start_matches('/');
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{root}/{}",
            self.config.tracking_uri,
            path.trim_start_matches('/')
        );
        self.send("mlflow-artifacts/artifacts", || {
            self.authorize(self.http.put(&url).body(bytes.clone()))
        })
        .await
        .map(drop)
    }

    /// Downloads `file` under an `mlflow-artifacts:/...` source; `None` when absent.
    pub async fn download_artifact(&self, source: &str, file: &str) -> Result<Option<Bytes>> {
        let root = source.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
            MlflowError::Config(format!(
                "model source `{source}` is not served by the tracking server"
            ))
        })?;
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{file}",
            self.config.tracking_uri,
            root.trim_start_matches('/').trim_end_matches('/')
        );
        match self
            .send("mlflow-artifacts/artifacts", || {
                self.authorize(self.http.get(&url))
            })
            .await
        {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.code() == Some(&ErrorCode::ResourceDoesNotExist) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists artifacts of a run under `path` (for checks).
    pub async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<String>> {
        let v = self
            .call(
                Method::Get,
                "artifacts/list",
                json!({"run_id": run_id, "path": path}),
            )
            .await?;
        Ok(v["files"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|x| x["path"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Tags (or params) as MLflow's `[{"key": ..., "value": ...}]`.
fn key_values(items: &[(String, String)]) -> Vec<Value> {
    items
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn parse<T: serde::de::DeserializeOwned>(v: Value, endpoint: &str) -> Result<T> {
    serde_json::from_value(v).map_err(|e| MlflowError::Protocol {
        endpoint: endpoint.to_string(),
        message: e.to_string(),
    })
}

fn string_field(v: &Value, field: &str, endpoint: &str) -> Result<String> {
    v[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| MlflowError::Protocol {
            endpoint: endpoint.to_string(),
            message: format!("no `{field}`"),
        })
}

fn run_info(v: &Value, endpoint: &str) -> Result<RunInfo> {
    let info = &v["run"]["info"];
    Ok(RunInfo {
        run_id: string_field(info, "run_id", endpoint)?,
        experiment_id: string_field(info, "experiment_id", endpoint)?,
        status: info["status"].as_str().unwrap_or_default().to_string(),
        artifact_uri: info["artifact_uri"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

fn model_version(v: &Value, endpoint: &str) -> Result<ModelVersion> {
    parse(v["model_version"].clone(), endpoint)
}
