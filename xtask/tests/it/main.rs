//! The kit's integration tests, in one binary: each test binary links its own copy
//! of hyper, tokio and regorus, so one binary links once instead of twenty times.
//! Each module is the file of one area (`cargo test -p xtask --test it a2a_v1::`).

mod a2a_http;
mod common;
mod export_schema;
mod prom_server;

mod a2a;
mod a2a_hostile;
mod a2a_memo;
mod a2a_metrics;
mod a2a_v1;
mod attest;
mod attest_python;
mod bad_bundles;
mod bad_envelopes;
mod crash_safety;
mod evidence;
mod evidence_regressions;
mod exit_codes;
mod export;
mod faults;
mod gates;
mod golive;
mod keys;
mod other_repo;
mod prometheus;
mod rehearse;
