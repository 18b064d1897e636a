//! The rollout itself: the canary gets its share, must become ready, then is checked
//! every interval until it has passed enough checks (promote), failed too many (roll
//! back) or gone too long without data (halt). Whatever ends it, traffic is never left
//! on an unobserved canary: every end but a promotion sets the canary's share to 0.

use std::future::Future;
use std::time::{Duration, Instant};

use kiln_prometheus::PrometheusClient;
use kiln_registry::Registry;

use crate::analysis::{Measurement, Verdict, judge};
use crate::error::{Result, RolloutError};
use crate::report::{AliasMove, Check, Decision, FORMAT_VERSION, Outcome, Report, TrafficChange};
use crate::router::Router;
use crate::settings::{Settings, Target, render};

/// What is rolled out.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The registered model.
    pub model: String,
    /// The name kiln-serve serves it under (`{model}` in the queries).
    pub served_name: String,
    /// The new version.
    pub canary_version: String,
    /// The alias the new version takes on promotion (`production`).
    pub alias: String,
    /// The version serving now; default: the alias's.
    pub stable_version: Option<String>,
}

/// A finished rollout: the report, and the error that decides the exit code (none
/// when promoted).
#[derive(Debug)]
pub struct Finished {
    pub report: Report,
    pub error: Option<RolloutError>,
}

/// What a rollout talks to.
pub struct Rollout<'a, R: Router> {
    pub router: &'a R,
    pub prometheus: &'a PrometheusClient,
    pub registry: &'a Registry,
    pub settings: &'a Settings,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct Run {
    report: Report,
    started: Instant,
    traffic_since: Option<Instant>,
}

impl Run {
    fn traffic(&mut self, percent: u8, why: &str) {
        let since = *self.traffic_since.get_or_insert_with(Instant::now);
        self.report.traffic.push(TrafficChange {
            at: now(),
            elapsed_s: since.elapsed().as_secs_f64(),
            canary_percent: percent,
            why: why.into(),
        });
    }

    fn decide(&mut self, outcome: Outcome, reason: String, exit_code: u8) {
        tracing::info!(outcome = ?outcome, "{reason}");
        self.report.decision = Decision {
            outcome,
            reason,
            at: now(),
            elapsed_s: self.started.elapsed().as_secs_f64(),
            exit_code,
        };
    }
}

impl<R: Router> Rollout<'_, R> {
    /// Runs the rollout to a decision. `stop` ends it early (a signal): the canary's
    /// share goes to 0 and the rollout is halted.
    pub async fn run(&self, plan: &Plan, stop: impl Future<Output = ()>) -> Result<Finished> {
        let settings = self.settings;
        let stable = match &plan.stable_version {
            Some(v) => v.clone(),
            None => self.registry.alias(&plan.model, &plan.alias).await?.ok_or_else(|| {
                RolloutError::Usage(format!(
                    "{}: alias `{}` points at no version, so there is no stable version to compare with (promote a first version with `kiln promote {} --version N --alias {}`)",
                    plan.model, plan.alias, plan.model, plan.alias
                ))
            })?,
        };
        if stable == plan.canary_version {
            return Err(RolloutError::Usage(format!(
                "{}: version {} is already `{}`: nothing to roll out",
                plan.model, stable, plan.alias
            )));
        }
        let started_at = now();
        let mut run = Run {
            report: Report {
                format_version: FORMAT_VERSION,
                model: plan.model.clone(),
                alias: plan.alias.clone(),
                canary_version: plan.canary_version.clone(),
                stable_version: stable.clone(),
                router: self.router.describe(),
                prometheus: self.prometheus.url().to_string(),
                settings: settings.clone(),
                started_at: started_at.clone(),
                finished_at: started_at,
                ready_after_s: None,
                traffic: Vec::new(),
                checks: Vec::new(),
                decision: Decision {
                    outcome: Outcome::Halted,
                    reason: String::new(),
                    at: String::new(),
                    elapsed_s: 0.0,
                    exit_code: 1,
                },
                alias_change: None,
            },
            started: Instant::now(),
            traffic_since: None,
        };
        tracing::info!(
            "rolling out {} version {} against {} (stable) via {}",
            plan.model,
            plan.canary_version,
            stable,
            run.report.router
        );
        let error = self.drive(plan, &stable, &mut run, stop).await;
        run.report.finished_at = now();
        Ok(Finished {
            report: run.report,
            error,
        })
    }

    async fn drive(
        &self,
        plan: &Plan,
        stable: &str,
        run: &mut Run,
        stop: impl Future<Output = ()>,
    ) -> Option<RolloutError> {
        let settings = self.settings;
        tokio::pin!(stop);
        // Prometheus first: a canary nobody can watch gets no traffic.
        if let Err(e) = self.prometheus.value("vector(1)").await {
            let e = RolloutError::from(e);
            run.decide(
                Outcome::Halted,
                format!("no traffic moved: Prometheus cannot be queried: {e}"),
                exit_code(&e),
            );
            return Some(e);
        }
        if let Err(e) = self
            .router
            .start_canary(&plan.canary_version, settings.canary_percent)
            .await
        {
            return Some(
                self.halt(run, format!("starting the canary failed: {e}"), e)
                    .await,
            );
        }
        run.traffic(settings.canary_percent, "canary started");
        // Ready, or rolled back.
        let deadline = Instant::now() + settings.ready_timeout.0;
        loop {
            match self.router.canary_ready().await {
                Ok(true) => break,
                Ok(false) if Instant::now() >= deadline => {
                    let reason = format!(
                        "canary version {} not ready after {}",
                        plan.canary_version, settings.ready_timeout
                    );
                    return self.roll_back(plan, stable, run, reason).await;
                }
                Ok(false) => {}
                Err(e) => {
                    return Some(
                        self.halt(
                            run,
                            format!("asking the router whether the canary is ready: {e}"),
                            e,
                        )
                        .await,
                    );
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = &mut stop => return Some(self.stopped(run).await),
            }
        }
        run.report.ready_after_s = Some(run.started.elapsed().as_secs_f64());
        tracing::info!("canary ready; checking every {}", settings.interval);
        let (mut passed, mut failed, mut inconclusive) = (0u32, 0u32, 0u32);
        let mut next = Instant::now() + settings.interval.0;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next.into()) => {}
                () = &mut stop => return Some(self.stopped(run).await),
            }
            next += settings.interval.0;
            let measured = async {
                let canary = self.measure(plan, &plan.canary_version, "canary").await?;
                let stable = self.measure(plan, stable, "stable").await?;
                Ok::<_, RolloutError>((canary, stable))
            };
            let (canary, stable_m) = match measured.await {
                Ok(m) => m,
                Err(e) => {
                    let reason = format!("the analysis cannot read its metrics: {e}");
                    return Some(self.halt(run, reason, e).await);
                }
            };
            let (verdict, reasons) = judge(&canary, &stable_m, &settings.thresholds);
            match verdict {
                Verdict::Pass => (passed, inconclusive) = (passed + 1, 0),
                Verdict::Fail => (failed, inconclusive) = (failed + 1, 0),
                Verdict::Inconclusive => inconclusive += 1,
            }
            let check = Check {
                n: run.report.checks.len() as u32 + 1,
                at: now(),
                elapsed_s: run.traffic_since.map_or(0.0, |t| t.elapsed().as_secs_f64()),
                canary,
                stable: stable_m,
                verdict,
                reasons,
                passed_so_far: passed,
                failed_so_far: failed,
            };
            tracing::info!(
                "check {}: {:?} — canary {} req, error ratio {}, p99 {}; stable {} req, error ratio {}, p99 {}{}",
                check.n,
                check.verdict,
                show(check.canary.requests, 0),
                show(check.canary.error_ratio, 4),
                show(check.canary.p99_seconds, 4),
                show(check.stable.requests, 0),
                show(check.stable.error_ratio, 4),
                show(check.stable.p99_seconds, 4),
                if check.reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", check.reasons.join("; "))
                }
            );
            let reasons = check.reasons.join("; ");
            run.report.checks.push(check);
            if failed >= settings.max_failures {
                let reason = format!(
                    "{failed} failed checks (max_failures {}): {reasons}",
                    settings.max_failures
                );
                return self.roll_back(plan, stable, run, reason).await;
            }
            if passed >= settings.promote_after {
                return self.promote(plan, stable, run, passed).await;
            }
            if inconclusive >= settings.max_inconclusive {
                let reason = format!(
                    "{inconclusive} checks in a row without enough data (max_inconclusive {}): {reasons}",
                    settings.max_inconclusive
                );
                let error = RolloutError::NotPromoted {
                    summary: format!(
                        "rollout of {} version {} halted: {reason}",
                        plan.model, plan.canary_version
                    ),
                    failures: vec![reason.clone()],
                };
                return Some(self.halt(run, reason, error).await);
            }
        }
    }

    async fn measure(&self, plan: &Plan, version: &str, role: &str) -> Result<Measurement> {
        let target = Target {
            model: &plan.served_name,
            version,
            role,
            window: self.settings.window(),
        };
        let q = &self.settings.queries;
        let (requests, errors, p99) = (
            render(&q.requests, &target),
            render(&q.errors, &target),
            render(&q.p99, &target),
        );
        let (requests, errors, p99) = tokio::join!(
            self.prometheus.value(&requests),
            self.prometheus.value(&errors),
            self.prometheus.value(&p99),
        );
        Ok(Measurement::new(version, requests?, errors?, p99?))
    }

    async fn promote(
        &self,
        plan: &Plan,
        stable: &str,
        run: &mut Run,
        passed: u32,
    ) -> Option<RolloutError> {
        if let Err(e) = self.router.set_canary_percent(100).await {
            return Some(
                self.halt(run, format!("promoting failed at the router: {e}"), e)
                    .await,
            );
        }
        run.traffic(100, "promoted");
        // The alias's history must end on the version that served (`--stable-version`
        // with the alias unset or elsewhere), so a later rollback returns to it.
        let before = match self.registry.alias(&plan.model, &plan.alias).await {
            Ok(v) => v,
            Err(e) => return Some(self.alias_failed(plan, run, RolloutError::Core(e))),
        };
        if before.as_deref() != Some(stable)
            && let Err(e) = self
                .registry
                .set_alias(&plan.model, &plan.alias, stable)
                .await
        {
            return Some(self.alias_failed(plan, run, RolloutError::Core(e)));
        }
        match self
            .registry
            .set_alias(&plan.model, &plan.alias, &plan.canary_version)
            .await
        {
            Ok(change) => {
                run.report.alias_change = Some(AliasMove {
                    alias: change.alias,
                    from: before,
                    to: change.to,
                });
            }
            Err(e) => return Some(self.alias_failed(plan, run, RolloutError::Core(e))),
        }
        run.decide(
            Outcome::Promoted,
            format!(
                "{passed} passing checks (promote_after {}): version {} has all the traffic and alias `{}`",
                self.settings.promote_after, plan.canary_version, plan.alias
            ),
            0,
        );
        None
    }

    /// The traffic moved; the registry did not. Say so: rerunning promote fixes it.
    fn alias_failed(&self, plan: &Plan, run: &mut Run, e: RolloutError) -> RolloutError {
        run.decide(
            Outcome::Promoted,
            format!(
                "promoted at the router, but moving alias `{}` failed: {e} (run `kiln promote {} --version {} --alias {}`)",
                plan.alias, plan.model, plan.canary_version, plan.alias
            ),
            exit_code(&e),
        );
        e
    }

    async fn roll_back(
        &self,
        plan: &Plan,
        stable: &str,
        run: &mut Run,
        reason: String,
    ) -> Option<RolloutError> {
        if let Err(e) = self.router.set_canary_percent(0).await {
            return Some(
                self.halt(
                    run,
                    format!("{reason}; and rolling back failed at the router: {e}"),
                    e,
                )
                .await,
            );
        }
        run.traffic(0, "rolled back");
        // The alias stays on (or goes back to) the stable version.
        match self
            .registry
            .set_alias(&plan.model, &plan.alias, stable)
            .await
        {
            Ok(change) => {
                if change.from.as_deref() != Some(stable) {
                    run.report.alias_change = Some(AliasMove {
                        alias: change.alias,
                        from: change.from,
                        to: change.to,
                    });
                }
            }
            Err(e) => {
                let e = RolloutError::Core(e);
                run.decide(Outcome::RolledBack, format!("{reason}; traffic is back on {stable} but restoring alias `{}` failed: {e}", plan.alias), exit_code(&e));
                return Some(e);
            }
        }
        let summary = format!(
            "rolled back {} version {} (traffic and alias `{}` on {stable}): {reason}",
            plan.model, plan.canary_version, plan.alias
        );
        run.decide(Outcome::RolledBack, reason.clone(), 3);
        Some(RolloutError::NotPromoted {
            summary,
            failures: vec![reason],
        })
    }

    /// Ends without a judgement: the canary's share to 0 if it had any.
    async fn halt(&self, run: &mut Run, reason: String, error: RolloutError) -> RolloutError {
        let mut reason = reason;
        if run.traffic_since.is_some()
            && run
                .report
                .traffic
                .last()
                .is_some_and(|t| t.canary_percent > 0)
        {
            match self.router.set_canary_percent(0).await {
                Ok(()) => run.traffic(0, "halted"),
                Err(e) => reason.push_str(&format!(
                    "; setting the canary's share to 0 failed too: {e}"
                )),
            }
        }
        run.decide(Outcome::Halted, reason, exit_code(&error));
        error
    }

    async fn stopped(&self, run: &mut Run) -> RolloutError {
        let reason = "stopped by a signal before a decision".to_string();
        let error = RolloutError::NotPromoted {
            summary: format!("rollout {reason}"),
            failures: vec![reason.clone()],
        };
        self.halt(run, reason, error).await
    }
}

fn exit_code(e: &RolloutError) -> u8 {
    match e {
        RolloutError::Usage(_) => 2,
        RolloutError::Unreachable { .. } => 75,
        RolloutError::NotPromoted { .. } => 3,
        RolloutError::Core(inner) => inner.class().code(),
        RolloutError::Router { .. } | RolloutError::Prometheus(_) => 1,
    }
}

fn show(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "none".into(), |v| format!("{v:.digits$}"))
}
