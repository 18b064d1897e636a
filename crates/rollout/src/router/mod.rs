//! Traffic routers: what moves a share of the requests to the canary. One trait, two
//! implementations: a KServe InferenceService in a cluster ([`kserve`]) and HAProxy's
//! runtime API on a laptop and in the tests ([`haproxy`]).

pub mod haproxy;
pub mod kserve;
pub mod patch;

use std::future::Future;

use crate::error::Result;

/// Moves traffic between the stable version and a canary.
pub trait Router {
    /// What and where it routes, for logs and `rollout.json`.
    fn describe(&self) -> String;

    /// Starts `version` as the canary with `percent` of the traffic (KServe: a new
    /// revision serving that version; HAProxy: the canary server's weight, the server
    /// itself started by whoever runs it).
    fn start_canary(&self, version: &str, percent: u8) -> impl Future<Output = Result<()>>;

    /// Whether the canary can take traffic (KServe: its revision is the latest ready
    /// one; HAProxy: its health check is up).
    fn canary_ready(&self) -> impl Future<Output = Result<bool>>;

    /// The canary's share: 0 rolls back (all to stable), 100 promotes.
    fn set_canary_percent(&self, percent: u8) -> impl Future<Output = Result<()>>;

    /// After the fact (`kiln rollout revert`): all traffic to `previous`, the version
    /// the alias is being restored to.
    fn revert(&self, previous: &str) -> impl Future<Output = Result<()>>;
}
