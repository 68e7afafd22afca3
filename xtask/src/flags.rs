//! Every command line of the kit, for both binaries: `cargo xtask` and the
//! drop-in `mc`. House rules: `///` help on every command and option (it is the
//! `--help` text), uppercase value names, and defaults stated in the help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The MC go-live kit: rehearse a release's go-live plan locally and ship a
/// signed evidence bundle.
///
/// Exit codes: 0 passed; 1 error (bad input file, I/O); 2 bad command line or
/// evidence that does not verify; 3 a gate failed; 4 a pre-merge check failed.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    max_term_width = 100
)]
pub struct Xtask {
    #[command(subcommand)]
    pub cmd: XtaskCmd,
}

#[derive(Debug, Subcommand)]
pub enum XtaskCmd {
    /// Run the whole go-live plan: build facts, gateway probe, SLO baseline,
    /// gates for every stage, signed evidence, reports.
    #[command(
        after_help = "Exit codes: 0 every stage passed and the evidence verified; 1 error (also a \
        failed Prometheus query, or a Prometheus that does not scrape the gateway); \
        2 bad option or evidence that does not verify; 3 a gate (or the gateway probe) failed; \
        4 a pre-merge check failed."
    )]
    Golive(GoliveArgs),
    /// Pack or verify signed evidence (HMAC bundles, Ed25519 DSSE envelopes); make keys.
    #[command(subcommand)]
    Evidence(EvidenceCmd),
    /// Take SLO snapshots.
    #[command(subcommand)]
    Slo(SloCmd),
    /// Judge one rollout stage against its objectives and write its report;
    /// `gates export` writes the objectives as Argo Rollouts or Flagger manifests.
    Gates(GatesCmd),
    /// Serve or probe the A2A agent gateway.
    #[command(subcommand)]
    A2a(A2aCmd),
    /// Measure evidence hashing and gateway throughput (never part of `cargo test`).
    #[cfg(feature = "bench")]
    Bench(BenchArgs),
}

/// The drop-in `mc` binary: the seed kit's `tools/mc.py` command lines, working
/// on the current directory.
///
/// Exit codes: 0 passed; 1 error (bad input file, I/O); 2 bad command line or
/// evidence that does not verify; 3 a gate failed.
#[derive(Debug, Parser)]
#[command(name = "mc", version, max_term_width = 100)]
pub struct Mc {
    #[command(subcommand)]
    pub cmd: McCmd,
}

// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum McCmd {
    /// Pack or verify signed evidence (HMAC bundles, Ed25519 DSSE envelopes); make keys.
    #[command(subcommand)]
    Evidence(EvidenceCmd),
    /// Take SLO snapshots.
    #[command(subcommand)]
    Slo(SloCmd),
    /// Judge one rollout stage against its objectives and write its report;
    /// `gates export` writes the objectives as Argo Rollouts or Flagger manifests.
    Gates(GatesCmd),
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Hash every regular file under the evidence directory and write a signed
    /// bundle (or, with --format dsse, an in-toto DSSE envelope). The key comes
    /// from MC_SIGNING_KEY or MC_SIGNING_KEY_FILE.
    Pack(PackArgs),
    /// Check a bundle's or a DSSE envelope's signature and every file it lists;
    /// prints a JSON verdict. Exits 0 when ok, 2 when not.
    Verify(VerifyArgs),
    /// Make an Ed25519 key pair for signed attestations: the private key as
    /// PKCS#8 PEM at FILE (mode 0600), the public key at FILE.pub; prints the
    /// key id. Never overwrites a file.
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// Where to write the bundle or envelope (parent directories are created).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The directory to pack, relative to the project root.
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub dir: PathBuf,
    /// Refuse the built-in development key (and, for dsse, a private key file
    /// other users can read).
    #[arg(long)]
    pub strict: bool,
    /// `bundle`: the seed-compatible bundle, signed with HMAC (MC_SIGNING_KEY);
    /// `dsse`: an in-toto Statement in a DSSE envelope, signed with the
    /// Ed25519 key in MC_SIGNING_KEY_FILE (see `evidence keygen`).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = PackFormat::Bundle)]
    pub format: PackFormat,
}

/// The formats `evidence pack` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PackFormat {
    Bundle,
    Dsse,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private key (relative to the project root); the
    /// public key goes to FILE.pub.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle or DSSE envelope to verify (the format is detected).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The Ed25519 public key (PEM, relative to the project root) that must have
    /// signed a DSSE envelope (default: MC_VERIFY_KEY_FILE); an envelope is
    /// never ok without one.
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<PathBuf>,
    /// Refuse the development key and bundles with the seed kit's weak signature.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Subcommand)]
pub enum SloCmd {
    /// Write an SLO snapshot: simulated (reproducible with --seed and
    /// SOURCE_DATE_EPOCH), or with --prometheus from PromQL instant queries.
    #[command(
        after_help = "Exit codes: 0 written; 1 error (bad config, unreadable file, Prometheus \
        unreachable, slow, answering an HTTP error or an error body, or a query that gives \
        more than one number); 2 bad option. On any error no file is written."
    )]
    Snapshot(SnapshotArgs),
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Where to write the snapshot.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Seed for the simulated values (default: MC_SEED, else random); always
    /// recorded in the snapshot so the run can be replayed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Rehearse a bad release: shift a metric, e.g. `GraphQL.reads.p95_ms=+200`
    /// or `availability=-0.5`, or apply the profile `bad-release`. Repeatable.
    #[arg(long, value_name = "METRIC=DELTA", conflicts_with = "prometheus")]
    pub degrade: Vec<String>,
    /// Take the snapshot from this Prometheus server (base URL; also
    /// `[prometheus] url` in the config or $PROMETHEUS_URL): one instant query
    /// per metric of `[prometheus.queries]` (default: the gateway's p95 and
    /// availability of /a2a/perform).
    #[arg(long, value_name = "URL", conflicts_with = "seed")]
    pub prometheus: Option<String>,
    /// Evaluation time of the queries: RFC 3339 (2026-12-03T16:00:00Z) or Unix
    /// seconds (default: now).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Configuration with the `[prometheus]` section (default: golive.toml in
    /// the project root when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `gates`: the seed's command line judges a stage (`gates --stage S --report
/// FILE ...`); `gates export` is a subcommand beside it.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct GatesCmd {
    #[command(subcommand)]
    pub sub: Option<GatesSub>,
    #[command(flatten)]
    pub judge: Option<GatesArgs>,
}

#[derive(Debug, Subcommand)]
pub enum GatesSub {
    /// Write the objectives as Kubernetes manifests for the engine of the real
    /// rollout: Argo Rollouts AnalysisTemplates or Flagger MetricTemplates and a
    /// Canary. Objectives the engine cannot express are listed on stderr.
    #[command(
        after_help = "Exit codes: 0 written; 1 a config without a Prometheus address, a name \
        collision, a stage with nothing to export, an unwritable --out; 2 bad command line or \
        an unknown stage."
    )]
    Export(ExportArgs),
}

/// The engines `gates export` writes manifests for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Argo Rollouts: one AnalysisTemplate per stage.
    Argo,
    /// Flagger: one MetricTemplate per metric and a Canary with the analysis.
    Flagger,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The engine of the real rollout.
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub format: ExportFormat,
    /// argo: export this stage only (default: every stage); flagger: take this
    /// stage's bounds (default: the last canary stage).
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// Gate configuration (TOML; default: golive.toml in the project root when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the manifests to this file (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GatesArgs {
    /// The rollout stage to judge: stage, canary_20, canary_50 or production
    /// (or a stage of the gate configuration).
    #[arg(long, value_name = "STAGE")]
    pub stage: String,
    /// Treat WARN as a failure (exit 3, as for FAIL).
    #[arg(long)]
    pub strict: bool,
    /// Where to write the gate report.
    #[arg(long, value_name = "FILE")]
    pub report: PathBuf,
    /// The SLO snapshot holding what the stage observed (default: simulate it).
    #[arg(long, value_name = "FILE")]
    pub slo: Option<PathBuf>,
    /// The baseline SLO snapshot for the regression check.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// An A2A probe result (JSON with a `policy` object) feeding the policy
    /// checks when the --slo snapshot has no `policy`.
    #[arg(long, value_name = "FILE")]
    pub probe: Option<PathBuf>,
    /// Gate configuration (TOML) overriding the default objectives
    /// (default: golive.toml in the project root when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Seed for simulated observations (default: MC_SEED, else random).
    #[arg(long, value_name = "N", conflicts_with = "slo")]
    pub seed: Option<u64>,
    /// Rehearse a bad release in the simulated observations (see `slo snapshot
    /// --degrade`; to degrade a snapshot, make it with `slo snapshot --degrade`).
    #[arg(long, value_name = "METRIC=DELTA", conflicts_with = "slo")]
    pub degrade: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum A2aCmd {
    /// Run the A2A gateway (POST /a2a/perform, POST /v1/data/<path>, GET /health, GET /metrics)
    /// until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Send the seed's example request and two the policy must deny, check the
    /// answers' shape and provenance hash, and optionally drive a bounded load
    /// (then print a measured SLO snapshot). Exits 1 when the gateway cannot be
    /// reached or answers with a wrong shape or hash.
    Probe(ProbeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Rego policy file with `package a2a` and a `decision` rule (default: the
    /// built-in policy, xtask/policy/a2a.rego).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Append every decision to this JSON-lines log (created with its parents).
    #[arg(long, value_name = "FILE")]
    pub decision_log: Option<PathBuf>,
    /// Largest request body accepted, in bytes (larger bodies get 413).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Runtime worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Inject a fault into POST /a2a/perform: `A2A.perform.p95_ms=+1200` adds
    /// 1.2 s of latency, `A2A.error_rate=+20` answers 20 % with 503. Repeatable.
    #[arg(long, value_name = "METRIC=DELTA")]
    pub degrade: Vec<String>,
    /// Keep no Prometheus metrics and serve no GET /metrics (to measure what
    /// the metrics cost).
    #[arg(long)]
    pub no_metrics: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Gateway base URL (default: $A2A_URL, else an in-process gateway).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Number of requests of the load (0: the single probe only).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub requests: u64,
    /// Concurrent connections of the load.
    #[arg(long, value_name = "C", default_value_t = 4)]
    pub concurrency: u64,
    /// Stop the load after this many seconds even if requests remain.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub max_seconds: u64,
    /// Also write the result (a measured SLO snapshot when loading) to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GoliveArgs {
    /// Release version (default: MC_VERSION, else v0.3.2-mc).
    #[arg(long = "version", value_name = "VERSION")]
    pub release: Option<String>,
    /// Seed for simulated observations (default: MC_SEED, else random).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Treat WARN as failure and refuse the development signing key.
    #[arg(long)]
    pub strict: bool,
    /// Comma-separated stages to run, in rollout order: names of the gate
    /// configuration's `stages` (so not a fixed list).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "stage,canary_20,canary_50,production"
    )]
    pub stages: Vec<String>,
    /// Gate configuration (TOML; default: golive.toml in the project root when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Rehearse a bad release (see `slo snapshot --degrade`). Repeatable.
    /// `A2A.perform.p95_ms=+MS` and `A2A.error_rate=+PCT` inject real latency
    /// and 503s into the in-process gateway (see `a2a serve --degrade`).
    #[arg(long, value_name = "METRIC=DELTA")]
    pub degrade: Vec<String>,
    /// Judge the metrics of `[prometheus.queries]` with what this Prometheus
    /// server measured (base URL; also `[prometheus] url` or $PROMETHEUS_URL);
    /// each stage first drives load through the gateway for the observation
    /// window (`[prometheus] window`, default 4s).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Address of the in-process gateway, so a running Prometheus can scrape
    /// its /metrics (default: a free port on 127.0.0.1).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub gateway_addr: String,
    /// Comma-separated pre-merge checks to run first.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub checks: Vec<Check>,
}

/// A pre-merge check of `golive --checks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Check {
    /// cargo fmt --all -- --check
    Fmt,
    /// cargo clippy --workspace --all-targets -- -D warnings
    Clippy,
    /// cargo test --workspace
    Test,
}

#[cfg(feature = "bench")]
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Comma-separated data sets to measure.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "a,b,c"
    )]
    pub sets: Vec<BenchSet>,
    /// Timed runs of each measurement, after one untimed warm-up; the median
    /// is reported (1 to 20).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub runs: u32,
    /// Divide file counts and sizes by this factor for a quick check (1 = the
    /// full sets of the issue; the seed-kit figures are quoted only then).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub scale_down: u64,
    /// Seconds of gateway load (1 to 60).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub duration: u64,
    /// Rounds of the gateway's compared loads (`/a2a/perform` with and
    /// without metrics, and `SendMessage`), each round in a new order; the
    /// median round is reported (1 to 10).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub rounds: u32,
    /// The seed kit's `tools/mc.py`, to time it (with python3) beside this kit
    /// instead of quoting the figures for it.
    #[arg(long, value_name = "FILE")]
    pub seed_kit: Option<PathBuf>,
    /// Skip the evidence benchmark.
    #[arg(long)]
    pub no_evidence: bool,
    /// Skip the gateway benchmark.
    #[arg(long)]
    pub no_gateway: bool,
    /// Skip the timing of `golive`.
    #[arg(long)]
    pub no_golive: bool,
    /// Also time cold builds of a fresh clone of HEAD: `cargo xtask golive`
    /// and `cargo test --workspace`, each into an empty target directory
    /// (several minutes).
    #[arg(long)]
    pub cold_build: bool,
    /// Distinct requests in the gateway's request stream (at least 1,000).
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1_000..=100_000))]
    pub distinct: u64,
    /// The seed of the gateway's request stream.
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub traffic_seed: u64,
}

/// A data set of `bench --sets`.
#[cfg(feature = "bench")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchSet {
    /// 10,000 files of 4 KiB
    A,
    /// 4 files of 256 MiB
    B,
    /// 100,000 files of 100 B, nested
    C,
}

#[cfg(feature = "bench")]
impl BenchSet {
    /// The set's name on the command line (`a`, `b` or `c`).
    pub fn name(self) -> &'static str {
        match self {
            BenchSet::A => "a",
            BenchSet::B => "b",
            BenchSet::C => "c",
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn clis_are_well_formed() {
        super::Xtask::command().debug_assert();
        super::Mc::command().debug_assert();
    }

    #[test]
    fn bench_is_offered_only_with_the_bench_feature() {
        let offered = super::Xtask::command()
            .get_subcommands()
            .any(|c| c.get_name() == "bench");
        assert_eq!(offered, cfg!(feature = "bench"));
    }
}
