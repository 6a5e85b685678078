//! lockstep keeps Kubernetes Secrets in lockstep with external secret managers, speaking the
//! External Secrets Operator API (`external-secrets.io`).
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod cli;
pub mod controller;
pub mod crdgen;
pub mod fetch;
pub mod leader;
pub mod materialize;
pub mod run;
pub mod telemetry;
pub mod template;
