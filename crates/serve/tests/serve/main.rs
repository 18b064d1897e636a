//! kiln-serve end to end: the model `kiln run` registers on Adult, served by the real
//! binary on loopback ports, called by clients no one here wrote (tritonclient, the
//! kserve package, schemathesis), scraped by a real Prometheus, logging to a folder and
//! to a real S3-protocol server.
//!
//! One test binary, so the pipeline runs once for all of them: `harness` (the pipeline
//! run, the server process, request helpers), `protocols` (what clients see: every
//! protocol and client, bad and random input, schemathesis, an MLflow reference) and
//! `operations` (what operators see: metrics in Prometheus, drift, the prediction log,
//! overload and SIGTERM).

mod harness;
mod lookup;
mod operations;
mod protocols;
mod security;
