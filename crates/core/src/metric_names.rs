//! The names of kiln-serve's Prometheus metrics: an API (ARCHITECTURE, "Serving
//! metrics") that kiln-serve registers, `kiln rollout` queries and `kiln slo`'s rules and
//! dashboards read. One list, so a rename cannot leave a reader behind; the YAML and
//! JSON under `monitoring/` are held to it by a test.

/// KServe's names: decoding a request, scoring it, encoding the answer (histograms).
pub const REQUEST_PREPROCESS_SECONDS: &str = "request_preprocess_seconds";
pub const REQUEST_PREDICT_SECONDS: &str = "request_predict_seconds";
pub const REQUEST_POSTPROCESS_SECONDS: &str = "request_postprocess_seconds";
/// Whole requests by protocol and model version (histogram).
pub const REQUEST_DURATION_SECONDS: &str = "kiln_request_duration_seconds";
/// Requests by protocol, model version and status code (counter).
pub const REQUESTS_TOTAL: &str = "kiln_requests_total";
pub const INFLIGHT_REQUESTS: &str = "kiln_inflight_requests";
pub const SHED_REQUESTS_TOTAL: &str = "kiln_shed_requests_total";
pub const BATCH_ROWS: &str = "kiln_batch_rows";
pub const REQUEST_ROWS: &str = "kiln_request_rows";
pub const DECISIONS_TOTAL: &str = "kiln_decisions_total";
pub const GROUP_DECISIONS_TOTAL: &str = "kiln_group_decisions_total";
pub const SCORE: &str = "kiln_score";
/// The served version and its bundle digest (value 1).
pub const MODEL_INFO: &str = "kiln_model_info";
pub const MODEL_READY: &str = "kiln_model_ready";
pub const FEATURE_DRIFT_PSI: &str = "kiln_feature_drift_psi";
pub const DRIFT_WINDOW_ROWS: &str = "kiln_drift_window_rows";
pub const DRIFTED_FEATURES_RATIO: &str = "kiln_drifted_features_ratio";
pub const PREDICTION_LOG_ROWS_TOTAL: &str = "kiln_prediction_log_rows_total";
pub const UNAUTHENTICATED_REQUESTS_TOTAL: &str = "kiln_unauthenticated_requests_total";
pub const CLIENT_TIMEOUTS_TOTAL: &str = "kiln_client_timeouts_total";
/// Request rows whose looked-up features were found (`hit`) or not (`miss`) by key.
pub const FEATURE_LOOKUPS_TOTAL: &str = "kiln_feature_lookups_total";
pub const FEATURE_TABLE_ROWS: &str = "kiln_feature_table_rows";
/// When the serving version of the feature table was loaded (Unix seconds).
pub const FEATURE_TABLE_LOADED: &str = "kiln_feature_table_loaded_timestamp_seconds";
pub const FEATURE_TABLE_REFRESH_ERRORS_TOTAL: &str = "kiln_feature_table_refresh_errors_total";

/// Every name above.
pub const ALL: [&str; 24] = [
    REQUEST_PREPROCESS_SECONDS,
    REQUEST_PREDICT_SECONDS,
    REQUEST_POSTPROCESS_SECONDS,
    REQUEST_DURATION_SECONDS,
    REQUESTS_TOTAL,
    INFLIGHT_REQUESTS,
    SHED_REQUESTS_TOTAL,
    BATCH_ROWS,
    REQUEST_ROWS,
    DECISIONS_TOTAL,
    GROUP_DECISIONS_TOTAL,
    SCORE,
    MODEL_INFO,
    MODEL_READY,
    FEATURE_DRIFT_PSI,
    DRIFT_WINDOW_ROWS,
    DRIFTED_FEATURES_RATIO,
    PREDICTION_LOG_ROWS_TOTAL,
    UNAUTHENTICATED_REQUESTS_TOTAL,
    CLIENT_TIMEOUTS_TOTAL,
    FEATURE_LOOKUPS_TOTAL,
    FEATURE_TABLE_ROWS,
    FEATURE_TABLE_LOADED,
    FEATURE_TABLE_REFRESH_ERRORS_TOTAL,
];
