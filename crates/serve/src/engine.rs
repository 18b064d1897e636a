//! The scoring engine: a bounded queue in front of scoring threads, with dynamic
//! batching. Async handlers never score on their own task; they enqueue a batch of
//! rows and await the reply. A full queue is shed at once (the caller answers 503).
//!
//! Each thread takes the first waiting job, then whatever else is already queued up to
//! `max_batch_rows`, waiting at most `max_wait` for more (0: never wait, batch only
//! what is already there — free under load, no added latency when idle). The batch is
//! scored in one pass of the transform and the model, and each job gets its own rows.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use tokio::sync::oneshot;

use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::model::{Scored, SharedModel};
use crate::monitor::Monitor;

/// Batching settings.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Scoring threads.
    pub threads: usize,
    /// Most rows scored in one pass.
    pub max_batch_rows: usize,
    /// Longest a thread waits for more rows after the first job.
    pub max_wait: Duration,
    /// Jobs that may wait in the queue before new ones are shed.
    pub queue_capacity: usize,
}

/// What a scored job returns: the outputs and how long the job waited and ran.
#[derive(Debug)]
pub struct Reply {
    pub result: Result<Scored, ServeError>,
    /// From enqueue to the end of scoring (queue wait + transform + model + policy).
    pub predict: Duration,
}

struct Job {
    batch: RecordBatch,
    context: JobContext,
    enqueued: Instant,
    reply: oneshot::Sender<Reply>,
}

/// Who asked: for the prediction log and the metrics.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub request_id: String,
    pub protocol: &'static str,
}

/// The protocol name of the self-check job, which metrics, drift and the log skip.
pub const SELF_CHECK: &str = "self_check";

/// Raised when a scoring thread panicked. A panic is a bug, and the model's state after
/// it cannot be trusted: the requests of the batch get 500, every later request 503,
/// the model reports not ready, and the server stops and exits non-zero so that
/// Kubernetes restarts it.
#[derive(Clone, Default)]
pub struct Fatal {
    inner: Arc<FatalInner>,
}

#[derive(Default)]
struct FatalInner {
    raised: AtomicBool,
    message: Mutex<Option<String>>,
    notify: tokio::sync::Notify,
}

impl Fatal {
    fn raise(&self, message: String) {
        let mut first = self.inner.message.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(message);
        }
        self.inner.raised.store(true, Ordering::SeqCst);
        self.inner.notify.notify_one();
    }

    /// Whether a scoring thread panicked.
    pub fn is_raised(&self) -> bool {
        self.inner.raised.load(Ordering::SeqCst)
    }

    /// The first panic's message, once raised.
    pub fn message(&self) -> Option<String> {
        self.inner
            .message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until raised; the panic's message.
    pub async fn wait(&self) -> String {
        loop {
            if let Some(message) = self.message() {
                return message;
            }
            self.inner.notify.notified().await;
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// A test's way to make scoring panic: a batch holding a job of exactly this many rows.
/// Compiled into the crate's own tests only.
#[cfg(test)]
pub(crate) static PANIC_ON_ROWS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

#[cfg(test)]
fn injected_fault(jobs: &[Job]) {
    let rows = PANIC_ON_ROWS.load(Ordering::SeqCst);
    if rows > 0 && jobs.iter().any(|j| j.batch.num_rows() == rows) {
        panic!("injected scoring fault ({rows} rows)");
    }
}

/// The queue and its threads.
#[derive(Clone)]
pub struct Engine {
    queue: Sender<Job>,
}

impl Engine {
    /// Starts the scoring threads. They stop when every [`Engine`] clone is dropped.
    pub fn start(
        model: SharedModel,
        options: BatchOptions,
        metrics: Arc<Metrics>,
        monitor: Arc<Monitor>,
        fatal: Fatal,
    ) -> std::io::Result<(Engine, Vec<std::thread::JoinHandle<()>>)> {
        let (queue, jobs) = crossbeam_channel::bounded::<Job>(options.queue_capacity.max(1));
        let mut threads = Vec::new();
        for i in 0..options.threads.max(1) {
            let (jobs, model, metrics, monitor, fatal) = (
                jobs.clone(),
                model.clone(),
                metrics.clone(),
                monitor.clone(),
                fatal.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("kiln-score-{i}"))
                    .spawn(move || {
                        score_loop(&jobs, &model, options, &metrics, &monitor, &fatal);
                    })?,
            );
        }
        Ok((Engine { queue }, threads))
    }

    /// Scores a batch of rows. Sheds at once when the queue is full.
    pub async fn score(&self, batch: RecordBatch, context: JobContext) -> Reply {
        let (reply, receiver) = oneshot::channel();
        let job = Job {
            batch,
            context,
            enqueued: Instant::now(),
            reply,
        };
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Reply {
                    result: Err(ServeError::Unavailable(
                        "overloaded: the scoring queue is full; retry later".into(),
                    )),
                    predict: Duration::ZERO,
                };
            }
            Err(TrySendError::Disconnected(_)) => {
                return Reply {
                    result: Err(ServeError::Unavailable(
                        "the server is shutting down".into(),
                    )),
                    predict: Duration::ZERO,
                };
            }
        }
        receiver.await.unwrap_or(Reply {
            result: Err(ServeError::Internal("the scoring thread stopped".into())),
            predict: Duration::ZERO,
        })
    }
}

fn score_loop(
    jobs: &Receiver<Job>,
    model: &SharedModel,
    options: BatchOptions,
    metrics: &Metrics,
    monitor: &Monitor,
    fatal: &Fatal,
) {
    let classifier = model.classifier.clone();
    while let Ok(first) = jobs.recv() {
        if fatal.is_raised() {
            // Answer, never strand, what is still queued while the server stops.
            let _ = first.reply.send(Reply {
                result: Err(ServeError::Unavailable(
                    "the model is not ready: a scoring thread failed and the server is restarting; retry later".into(),
                )),
                predict: Duration::ZERO,
            });
            continue;
        }
        let mut rows = first.batch.num_rows();
        let mut batch = vec![first];
        let deadline = Instant::now() + options.max_wait;
        while rows < options.max_batch_rows {
            let next = match jobs.try_recv() {
                Ok(job) => Some(job),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) if options.max_wait.is_zero() => None,
                Err(TryRecvError::Empty) => jobs.recv_deadline(deadline).ok(),
            };
            let Some(job) = next else { break };
            rows += job.batch.num_rows();
            batch.push(job);
        }
        metrics.batch_rows.observe(rows as f64);
        let scored = std::panic::catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            injected_fault(&batch);
            score_jobs(model, &classifier, &batch)
        }));
        let results = match scored {
            Ok(results) => results,
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(%message, "a scoring thread panicked: the model is marked not ready");
                metrics.ready.set(0);
                fatal.raise(message.clone());
                for job in batch {
                    let predict = job.enqueued.elapsed();
                    let _ = job.reply.send(Reply {
                        result: Err(ServeError::Internal(format!(
                            "scoring failed ({message}); the server is restarting"
                        ))),
                        predict,
                    });
                }
                continue;
            }
        };
        for (job, result) in batch.into_iter().zip(results) {
            if let Ok(scored) = &result
                && job.context.protocol != SELF_CHECK
            {
                monitor.observe(&job.batch, scored, &job.context);
            }
            let predict = job.enqueued.elapsed();
            // A caller that went away (client disconnected) is no error.
            let _ = job.reply.send(Reply { result, predict });
        }
    }
}

/// Scores the jobs in one pass; if that fails (one job's rows are at fault), each job
/// alone, so one bad request never fails its neighbours.
fn score_jobs(
    model: &SharedModel,
    classifier: &kiln_model::Classifier<kiln_model::CpuBackend>,
    jobs: &[Job],
) -> Vec<Result<Scored, ServeError>> {
    let one = |batch: &RecordBatch| model.score(classifier, batch).map_err(ServeError::from);
    if jobs.len() == 1 {
        return vec![one(&jobs[0].batch)];
    }
    let batches: Vec<&RecordBatch> = jobs.iter().map(|j| &j.batch).collect();
    let joined = arrow::compute::concat_batches(&model.inputs.arrow, batches.iter().copied());
    if let Ok(joined) = joined
        && let Ok(scored) = model.score(classifier, &joined)
    {
        let mut at = 0;
        return jobs
            .iter()
            .map(|job| {
                let n = job.batch.num_rows();
                let part = Scored {
                    probabilities: scored.probabilities[at..at + n].to_vec(),
                    labels: scored.labels[at..at + n].to_vec(),
                };
                at += n;
                Ok(part)
            })
            .collect();
    }
    batches.into_iter().map(one).collect()
}
