//! The series on `/metrics` (Prometheus text format). Their names are an API: rollout,
//! the SLO rules and the dashboards read them (see docs/serving.md, "Metrics").
//!
//! KServe's names for the stage latencies (`request_{preprocess,predict,postprocess}_seconds`
//! with label `model_name`), and Kiln's own `kiln_*` series for the rest.

use kiln_core::metric_names as names;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds; 0.3 s is the latency SLO's threshold.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Every series the server exports.
pub struct Metrics {
    registry: Registry,
    pub preprocess: Histogram,
    pub predict: Histogram,
    pub postprocess: Histogram,
    pub request_duration: HistogramVec,
    pub requests: IntCounterVec,
    pub in_flight: IntGauge,
    pub shed: IntCounterVec,
    pub batch_rows: Histogram,
    pub request_rows: Histogram,
    pub decisions: IntCounterVec,
    pub group_decisions: IntCounterVec,
    pub scores: Histogram,
    pub model_info: IntGaugeVec,
    pub ready: IntGauge,
    pub feature_drift: GaugeVec,
    pub drift_samples: IntGauge,
    pub drifted_share: Gauge,
    pub log_rows: IntCounterVec,
    pub unauthenticated: IntCounterVec,
    pub timeouts: IntCounterVec,
    pub feature_lookups: IntCounterVec,
    pub feature_table_rows: IntGauge,
    pub feature_table_loaded: Gauge,
    pub feature_table_refresh_errors: IntCounter,
}

fn histogram(name: &str, help: &str, model: &str, buckets: &[f64]) -> Histogram {
    Histogram::with_opts(
        HistogramOpts::new(name, help)
            .const_label("model_name", model)
            .buckets(buckets.to_vec()),
    )
    .expect("valid histogram options")
}

impl Metrics {
    /// The series of one served model.
    pub fn new(model_name: &str) -> Metrics {
        let model = model_name;
        let labelled =
            |name: &str, help: &str| Opts::new(name, help).const_label("model_name", model);
        let m = Metrics {
            registry: Registry::new(),
            preprocess: histogram(
                names::REQUEST_PREPROCESS_SECONDS,
                "Decoding and validating a request into rows (seconds)",
                model,
                LATENCY_BUCKETS,
            ),
            predict: histogram(
                names::REQUEST_PREDICT_SECONDS,
                "Scoring a request: queue wait, transform, model and decision policy (seconds)",
                model,
                LATENCY_BUCKETS,
            ),
            postprocess: histogram(
                names::REQUEST_POSTPROCESS_SECONDS,
                "Encoding the response (seconds)",
                model,
                LATENCY_BUCKETS,
            ),
            request_duration: HistogramVec::new(
                HistogramOpts::new(
                    names::REQUEST_DURATION_SECONDS,
                    "Whole inference requests, from the body read to the response (seconds)",
                )
                .const_label("model_name", model)
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["protocol", "model_version"],
            )
            .expect("valid histogram options"),
            requests: IntCounterVec::new(
                labelled(names::REQUESTS_TOTAL, "Inference requests by protocol, model version and status code"),
                &["protocol", "model_version", "code"],
            )
            .expect("valid counter options"),
            in_flight: IntGauge::with_opts(labelled(
                names::INFLIGHT_REQUESTS,
                "Inference requests being served now",
            ))
            .expect("valid gauge options"),
            shed: IntCounterVec::new(
                labelled(
                    names::SHED_REQUESTS_TOTAL,
                    "Requests refused at once because the server was at its limit (503)",
                ),
                &["reason"],
            )
            .expect("valid counter options"),
            batch_rows: histogram(
                names::BATCH_ROWS,
                "Rows scored in one pass of the model (dynamic batching across requests)",
                model,
                &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0],
            ),
            request_rows: histogram(
                names::REQUEST_ROWS,
                "Rows per inference request",
                model,
                &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0],
            ),
            decisions: IntCounterVec::new(
                labelled(names::DECISIONS_TOTAL, "Decisions by model version and label"),
                &["model_version", "label"],
            )
            .expect("valid counter options"),
            group_decisions: IntCounterVec::new(
                labelled(
                    names::GROUP_DECISIONS_TOTAL,
                    "Decisions by group of the decision policy's sensitive attribute",
                ),
                &["attribute", "group", "label"],
            )
            .expect("valid counter options"),
            scores: histogram(
                names::SCORE,
                "Scores (probability of the positive class)",
                model,
                &[0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0],
            ),
            model_info: IntGaugeVec::new(
                labelled(names::MODEL_INFO, "The served model (value 1)"),
                &["model_version", "bundle_sha256"],
            )
            .expect("valid gauge options"),
            ready: IntGauge::with_opts(labelled(
                names::MODEL_READY,
                "1 once the bundle is loaded and the self-check prediction passed",
            ))
            .expect("valid gauge options"),
            feature_drift: GaugeVec::new(
                labelled(
                    names::FEATURE_DRIFT_PSI,
                    "Population stability index of each input over the served-row window against the training profile",
                ),
                &["feature"],
            )
            .expect("valid gauge options"),
            drift_samples: IntGauge::with_opts(labelled(
                names::DRIFT_WINDOW_ROWS,
                "Served rows in the drift window",
            ))
            .expect("valid gauge options"),
            drifted_share: Gauge::with_opts(labelled(
                names::DRIFTED_FEATURES_RATIO,
                "Share of inputs whose drift exceeds the threshold (only with enough rows in the window)",
            ))
            .expect("valid gauge options"),
            log_rows: IntCounterVec::new(
                labelled(
                    names::PREDICTION_LOG_ROWS_TOTAL,
                    "Rows of the prediction log: written; spilled to local disk while the store was unreachable, and resent once it was back; dropped (buffer full, or the spill failed)",
                ),
                &["outcome"],
            )
            .expect("valid counter options"),
            unauthenticated: IntCounterVec::new(
                labelled(
                    names::UNAUTHENTICATED_REQUESTS_TOTAL,
                    "Requests refused for a missing or unknown bearer token (401 / UNAUTHENTICATED)",
                ),
                &["protocol"],
            )
            .expect("valid counter options"),
            timeouts: IntCounterVec::new(
                labelled(
                    names::CLIENT_TIMEOUTS_TOTAL,
                    "Requests and connections cut because the client was too slow: the request body (408), the TLS handshake",
                ),
                &["stage"],
            )
            .expect("valid counter options"),
            feature_lookups: IntCounterVec::new(
                labelled(
                    names::FEATURE_LOOKUPS_TOTAL,
                    "Request rows whose looked-up features were found by key in the feature table (hit) or not (miss: imputed)",
                ),
                &["result"],
            )
            .expect("valid counter options"),
            feature_table_rows: IntGauge::with_opts(labelled(
                names::FEATURE_TABLE_ROWS,
                "Keys in the serving version of the feature table",
            ))
            .expect("valid gauge options"),
            feature_table_loaded: Gauge::with_opts(labelled(
                names::FEATURE_TABLE_LOADED,
                "When the serving version of the feature table was loaded (Unix seconds)",
            ))
            .expect("valid gauge options"),
            feature_table_refresh_errors: IntCounter::with_opts(labelled(
                names::FEATURE_TABLE_REFRESH_ERRORS_TOTAL,
                "Feature table refreshes that failed (the loaded version kept serving)",
            ))
            .expect("valid counter options"),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.preprocess.clone()),
            Box::new(m.predict.clone()),
            Box::new(m.postprocess.clone()),
            Box::new(m.request_duration.clone()),
            Box::new(m.requests.clone()),
            Box::new(m.in_flight.clone()),
            Box::new(m.shed.clone()),
            Box::new(m.batch_rows.clone()),
            Box::new(m.request_rows.clone()),
            Box::new(m.decisions.clone()),
            Box::new(m.group_decisions.clone()),
            Box::new(m.scores.clone()),
            Box::new(m.model_info.clone()),
            Box::new(m.ready.clone()),
            Box::new(m.feature_drift.clone()),
            Box::new(m.drift_samples.clone()),
            Box::new(m.drifted_share.clone()),
            Box::new(m.log_rows.clone()),
            Box::new(m.unauthenticated.clone()),
            Box::new(m.timeouts.clone()),
            Box::new(m.feature_lookups.clone()),
            Box::new(m.feature_table_rows.clone()),
            Box::new(m.feature_table_loaded.clone()),
            Box::new(m.feature_table_refresh_errors.clone()),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ];
        for collector in collectors {
            m.registry
                .register(collector)
                .expect("each series is registered once");
        }
        for outcome in ["written", "spilled", "resent", "dropped"] {
            m.log_rows.with_label_values(&[outcome]);
        }
        for stage in ["body", "tls_handshake"] {
            m.timeouts.with_label_values(&[stage]);
        }
        for reason in ["concurrency", "queue", "memory"] {
            m.shed.with_label_values(&[reason]);
        }
        for result in ["hit", "miss"] {
            m.feature_lookups.with_label_values(&[result]);
        }
        m
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed series.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
