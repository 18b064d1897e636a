//! The throughput SLO's capacity check: open-loop load at a fixed rate for a set time,
//! then pass or fail on the measured p99 and error ratio.
//!
//! Open loop: request `i` is sent at `start + i / rate` whether or not earlier ones
//! finished (the sender never waits for an answer, so a stalled server cannot slow the
//! schedule down and hide its queue: no coordinated omission). Latency counts from the
//! moment the request is sent; the timer's own lateness (tokio's 1 ms resolution) is
//! not charged to the server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Result, SloError};
use crate::prometheus::error_chain;

/// What to send and what counts as passing.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub url: String,
    /// A JSON body to POST; `None` sends GETs.
    pub body: Option<Vec<u8>>,
    /// Requests per second.
    pub rate: f64,
    pub duration: Duration,
    /// The latency objective the p99 must stay under.
    pub latency: Duration,
    /// The largest share of failed requests (non-2xx, transport errors, timeouts).
    pub max_error_ratio: f64,
    /// Requests in flight at most; a request due beyond it counts as failed.
    pub max_in_flight: usize,
}

/// What the probe measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub url: String,
    pub target_rps: f64,
    pub duration_s: f64,
    pub sent: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Successful requests per second over the run.
    pub achieved_rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub error_ratio: f64,
    /// How late the probe sent its latest request against the schedule (its own lag,
    /// not the server's): large values mean the prober, not the server, was starved.
    pub max_send_lag_ms: f64,
    pub passed: bool,
    pub reasons: Vec<String>,
}

impl ProbeResult {
    pub fn summary(&self) -> String {
        format!(
            "probe {}: {} requests at {} rps for {:.0} s: {:.1} rps served, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} failed ({:.3} %), send lag at most {:.1} ms: {}",
            self.url,
            self.sent,
            crate::rules::number(self.target_rps),
            self.duration_s,
            self.achieved_rps,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.failed,
            self.error_ratio * 100.0,
            self.max_send_lag_ms,
            if self.passed { "pass" } else { "FAIL" }
        )
    }
}

/// Runs the probe. Exit 75 (unreachable) when not one request got an answer.
pub async fn probe(settings: &ProbeSettings) -> Result<ProbeResult> {
    if !(settings.rate > 0.0 && settings.rate.is_finite()) {
        return Err(SloError::Usage(format!(
            "--probe-rate {}: must be a positive number of requests per second",
            settings.rate
        )));
    }
    url::Url::parse(&settings.url)
        .map_err(|e| SloError::Usage(format!("--probe `{}`: not a URL: {e}", settings.url)))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(settings.max_in_flight)
        .build()
        .map_err(|e| SloError::Usage(format!("HTTP client: {e}")))?;
    let total = (settings.rate * settings.duration.as_secs_f64())
        .round()
        .max(1.0) as u64;
    let limit = Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight.max(1)));
    let body: Option<bytes::Bytes> = settings.body.clone().map(bytes::Bytes::from);
    let start = Instant::now() + Duration::from_millis(10);
    let mut tasks = tokio::task::JoinSet::new();
    let mut over_limit = 0u64;
    let mut max_lag = Duration::ZERO;
    let mut last_error = None::<String>;
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / settings.rate);
        tokio::time::sleep_until(due.into()).await;
        let sent = Instant::now();
        max_lag = max_lag.max(sent.duration_since(due));
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            over_limit += 1;
            continue;
        };
        let request = match &body {
            Some(body) => client
                .post(&settings.url)
                .header("content-type", "application/json")
                .body(body.clone()),
            None => client.get(&settings.url),
        };
        tasks.spawn(async move {
            let outcome = match request.send().await {
                Ok(response) => {
                    let ok = response.status().is_success();
                    // Read the body: the request is done when the answer is.
                    let read = response.bytes().await;
                    match (ok, read) {
                        (true, Ok(_)) => Ok(()),
                        (false, _) => Err(None),
                        (true, Err(e)) => Err(Some(error_chain(&e))),
                    }
                }
                Err(e) => Err(Some(error_chain(&e))),
            };
            drop(permit);
            (sent.elapsed(), outcome)
        });
    }
    let mut latencies = Vec::with_capacity(total as usize);
    let mut failed = over_limit;
    let mut answered = 0u64;
    let mut finished = start;
    while let Some(joined) = tasks.join_next().await {
        let Ok((latency, outcome)) = joined else {
            failed += 1;
            continue;
        };
        finished = finished.max(Instant::now());
        latencies.push(latency);
        match outcome {
            Ok(()) => answered += 1,
            Err(None) => {
                answered += 1;
                failed += 1;
            }
            Err(Some(message)) => {
                failed += 1;
                last_error = Some(message);
            }
        }
    }
    if answered == 0 {
        return Err(SloError::Unreachable {
            url: settings.url.clone(),
            message: last_error.unwrap_or_else(|| "no request was answered".into()),
        });
    }
    latencies.sort();
    let quantile = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    let succeeded = total - failed;
    let elapsed = finished.duration_since(start).as_secs_f64().max(1e-9);
    let error_ratio = failed as f64 / total as f64;
    let p99_ms = quantile(0.99);
    let achieved_rps = succeeded as f64 / elapsed.max(settings.duration.as_secs_f64());
    let mut reasons = Vec::new();
    let latency_ms = settings.latency.as_secs_f64() * 1000.0;
    if p99_ms > latency_ms {
        reasons.push(format!(
            "p99 {p99_ms:.1} ms is over the {latency_ms:.0} ms objective"
        ));
    }
    if error_ratio > settings.max_error_ratio {
        reasons.push(format!(
            "{failed} of {total} requests failed ({:.3} %, at most {:.3} % allowed){}",
            error_ratio * 100.0,
            settings.max_error_ratio * 100.0,
            if over_limit > 0 {
                format!(
                    ", {over_limit} of them never sent: {} already in flight",
                    settings.max_in_flight
                )
            } else {
                String::new()
            }
        ));
    }
    // Served within the objective at the target rate: allow 5 % for timer slack.
    if achieved_rps < settings.rate * 0.95 {
        reasons.push(format!(
            "served {achieved_rps:.1} rps, under the {} rps objective",
            crate::rules::number(settings.rate)
        ));
    }
    Ok(ProbeResult {
        url: settings.url.clone(),
        target_rps: settings.rate,
        duration_s: settings.duration.as_secs_f64(),
        sent: total,
        succeeded,
        failed,
        achieved_rps,
        p50_ms: quantile(0.5),
        p99_ms,
        max_ms: quantile(1.0),
        error_ratio,
        max_send_lag_ms: max_lag.as_secs_f64() * 1000.0,
        passed: reasons.is_empty(),
        reasons,
    })
}
