//! The HTTP side, on axum: KServe V1, the Open Inference Protocol (V2) REST API and
//! health on the inference listener; health and `/metrics` on the admin listener. Every
//! error is a JSON `{"error": "..."}` with a 4xx status (401 without a valid token, 408
//! for a body too slow, 413 for one over the limit, 503 with `Retry-After` when
//! shedding load).

use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::{self, Guard};
use crate::error::ServeError;
use crate::inputs::{Tensor, TensorData};
use crate::net::BodyLimits;
use crate::service::{AppState, SERVER_NAME, SERVER_VERSION};

/// The router of the inference listener: V1 and V2 REST behind the bearer-token guard
/// (when tokens are configured), the V2 health endpoints open (probes carry no token),
/// every body under its deadline.
pub fn router(state: AppState, guard: Guard, limits: BodyLimits) -> Router {
    let guarded = Router::new()
        .route("/v1/models", get(v1_models))
        .route("/v1/models/{target}", get(v1_model).post(v1_predict))
        .route("/v2", get(v2_server_metadata))
        .route("/v2/", get(v2_server_metadata))
        .route("/v2/models/{name}", get(v2_model_metadata))
        .route("/v2/models/{name}/ready", get(v2_model_ready))
        .route("/v2/models/{name}/infer", post(v2_infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2_version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2_version_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2_version_infer),
        )
        .route_layer(axum::middleware::from_fn_with_state(guard, auth::rest));
    guarded
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            limits,
            crate::net::body_deadline,
        ))
        .with_state(state)
}

/// The router of the admin listener: health and `/metrics`, no inference, no token.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .fallback(async || {
            ServeError::NotFound("the admin listener serves /v2/health/* and /metrics".into())
        })
        .with_state(state)
}

async fn not_found() -> ServeError {
    ServeError::NotFound("no such endpoint; see /v1/models and /v2".into())
}

async fn live() -> Response {
    axum::Json(json!({ "live": true })).into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    // Serving starts only after the bundle loaded and the self-check passed.
    let ready = state.metrics().ready.get() == 1;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(json!({ "ready": ready }))).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.monitor().refresh_drift();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().encode(),
    )
        .into_response()
}

/// Reads the body within the server's limit (413 beyond it).
async fn read_body(state: &AppState, body: Body) -> Result<Bytes, ServeError> {
    let limit = state.max_body_bytes();
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let error = e.into_inner();
        if crate::net::is_body_timeout(error.as_ref()) {
            return ServeError::Timeout(error.to_string());
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
        while let Some(inner) = cause {
            if inner.is::<http_body_util::LengthLimitError>() {
                return ServeError::TooLarge(format!(
                    "the request body is over the limit of {limit} bytes (--max-body-bytes)"
                ));
            }
            cause = inner.source();
        }
        // The client went away or broke the stream mid-body: its request, its error.
        ServeError::bad(format!("the request body could not be read: {error}"))
    })
}

fn parse_json_now<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ServeError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ServeError::bad("the request body is not UTF-8"));
    }
    serde_json::from_slice(bytes).map_err(|e| ServeError::bad(format!("invalid JSON body: {e}")))
}

/// Bodies this large are decoded on the blocking pool, not on an async worker.
const DECODE_OFF_THREAD_BYTES: usize = 64 * 1024;

async fn parse_json<T: DeserializeOwned + Send + 'static>(bytes: Bytes) -> Result<T, ServeError> {
    if bytes.len() < DECODE_OFF_THREAD_BYTES {
        return parse_json_now(&bytes);
    }
    tokio::task::spawn_blocking(move || parse_json_now(&bytes))
        .await
        .map_err(|e| ServeError::Internal(format!("decoding the request: {e}")))?
}

fn header_id(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-request-id").and_then(|v| v.to_str().ok())
}

/// Runs one inference request: memory reservation, body (under its deadline),
/// admission to scoring, decode, score, encode, metrics. The scoring slot is taken only
/// once the body is in: a client that dawdles holds memory it declared, never a slot.
async fn handle(
    state: &AppState,
    protocol: &'static str,
    body: Body,
    run: impl AsyncFnOnce(&AppState, Bytes) -> Result<Value, ServeError>,
) -> Response {
    let started = Instant::now();
    let result = async {
        let declared = http_body::Body::size_hint(&body).exact();
        let _memory = state.reserve_memory(declared)?;
        let bytes = read_body(state, body).await?;
        let _admission = state.admit()?;
        let value = run(state, bytes).await?;
        let encode = Instant::now();
        let body = serde_json::to_vec(&value)
            .map_err(|e| ServeError::Internal(format!("encoding the response: {e}")))?;
        state
            .metrics()
            .postprocess
            .observe(encode.elapsed().as_secs_f64());
        Ok::<Vec<u8>, ServeError>(body)
    }
    .await;
    let response = match result {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    };
    state.record(protocol, response.status().as_u16(), started);
    response
}

// ---- V1 -------------------------------------------------------------------------

async fn v1_models(State(state): State<AppState>) -> Response {
    axum::Json(json!({ "models": [state.model().name] })).into_response()
}

async fn v1_model(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.check_model(&name, None) {
        Ok(()) => axum::Json(json!({ "name": name, "ready": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct V1Request {
    instances: Vec<Value>,
}

async fn v1_predict(
    State(state): State<AppState>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some((name, verb)) = target.rsplit_once(':') else {
        return ServeError::NotFound(format!(
            "POST /v1/models/{target}: expected /v1/models/<name>:predict"
        ))
        .into_response();
    };
    if verb != "predict" {
        return ServeError::NotFound(format!(
            "`:{verb}` is not supported; use /v1/models/<name>:predict"
        ))
        .into_response();
    }
    if let Err(e) = state.check_model(name, None) {
        return e.into_response();
    }
    let id = state.request_id(header_id(&headers));
    handle(&state, "v1", body, async move |state, bytes| {
        let request: V1Request = parse_json(bytes).await?;
        let done = state
            .infer("v1", id, |schema| schema.from_records(&request.instances))
            .await?;
        let predictions: Vec<Value> = done
            .scored
            .probabilities
            .iter()
            .zip(&done.scored.labels)
            .map(|(p, l)| json!({ "probability": p, "label": l }))
            .collect();
        Ok(json!({ "predictions": predictions }))
    })
    .await
}

// ---- V2 -------------------------------------------------------------------------

async fn v2_server_metadata() -> Response {
    axum::Json(json!({ "name": SERVER_NAME, "version": SERVER_VERSION, "extensions": [] }))
        .into_response()
}

/// V2 model metadata (shared with gRPC): one input per raw column, the two outputs.
pub fn model_metadata(state: &AppState) -> Value {
    let model = state.model();
    let inputs: Vec<Value> = model
        .inputs
        .columns
        .iter()
        .map(|c| json!({ "name": c.name, "datatype": c.v2_datatype(), "shape": [-1] }))
        .collect();
    json!({
        "name": model.name,
        "versions": [model.version],
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": [
            { "name": "probability", "datatype": "FP32", "shape": [-1] },
            { "name": "label", "datatype": "INT64", "shape": [-1] },
        ],
    })
}

/// What `platform` says.
pub const PLATFORM: &str = "kiln_burn";

fn metadata_response(state: &AppState, name: &str, version: Option<&str>) -> Response {
    match state.check_model(name, version) {
        Ok(()) => axum::Json(model_metadata(state)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn v2_model_metadata(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    metadata_response(&state, &name, None)
}

async fn v2_version_metadata(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    metadata_response(&state, &name, Some(&version))
}

fn ready_response(state: &AppState, name: &str, version: Option<&str>) -> Response {
    match state.check_model(name, version) {
        Ok(()) => {
            let ready = state.metrics().ready.get() == 1;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, axum::Json(json!({ "name": name, "ready": ready }))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn v2_model_ready(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    ready_response(&state, &name, None)
}

async fn v2_version_ready(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    ready_response(&state, &name, Some(&version))
}

#[derive(Deserialize)]
struct V2Request {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    parameters: Option<serde_json::Map<String, Value>>,
    inputs: Vec<V2Input>,
    #[serde(default)]
    outputs: Option<Vec<V2Output>>,
}

#[derive(Deserialize)]
struct V2Input {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    #[allow(dead_code)]
    parameters: Option<serde_json::Map<String, Value>>,
    data: Value,
}

#[derive(Deserialize)]
struct V2Output {
    name: String,
}

/// The outputs a V2 request asked for (both when it names none).
pub fn requested_outputs(names: &[String]) -> Result<(bool, bool), ServeError> {
    if names.is_empty() {
        return Ok((true, true));
    }
    for name in names {
        if name != "probability" && name != "label" {
            return Err(ServeError::bad(format!(
                "unknown output `{name}`; the model gives `probability` and `label`"
            )));
        }
    }
    Ok((
        names.iter().any(|n| n == "probability"),
        names.iter().any(|n| n == "label"),
    ))
}

async fn v2_infer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_v2(state, name, None, headers, body).await
}

async fn v2_version_infer(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_v2(state, name, Some(version), headers, body).await
}

async fn infer_v2(
    state: AppState,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = state.check_model(&name, version.as_deref()) {
        return e.into_response();
    }
    let header = header_id(&headers).map(str::to_string);
    handle(&state, "v2_rest", body, async move |state, bytes| {
        let request: V2Request = parse_json(bytes).await?;
        let wanted: Vec<String> = request
            .outputs
            .unwrap_or_default()
            .into_iter()
            .map(|o| o.name)
            .collect();
        let (probability, label) = requested_outputs(&wanted)?;
        let mut tensors = Vec::with_capacity(request.inputs.len());
        for input in request.inputs {
            let Value::Array(items) = input.data else {
                return Err(ServeError::bad(format!(
                    "input `{}`: data must be an array",
                    input.name
                )));
            };
            tensors.push(Tensor {
                name: input.name,
                datatype: input.datatype,
                shape: input.shape,
                data: TensorData::Json(items),
            });
        }
        let id = state.request_id(request.id.as_deref().or(header.as_deref()));
        let done = state
            .infer("v2_rest", id, |schema| schema.from_tensors(tensors))
            .await?;
        let n = done.scored.labels.len();
        let mut outputs = Vec::new();
        if probability {
            outputs.push(json!({
                "name": "probability", "datatype": "FP32", "shape": [n],
                "data": done.scored.probabilities,
            }));
        }
        if label {
            outputs.push(json!({
                "name": "label", "datatype": "INT64", "shape": [n],
                "data": done.scored.labels,
            }));
        }
        let model = state.model();
        Ok(json!({
            "model_name": model.name,
            "model_version": model.version,
            "id": done.request_id,
            "outputs": outputs,
        }))
    })
    .await
}
