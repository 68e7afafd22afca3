//! The gateway benchmark: the release `xtask a2a serve` on loopback, with its
//! decision log on, loaded by `wrk` (2 threads, 16 connections) in four
//! scenarios: the seed's request repeated, and the seeded stream of distinct
//! requests of [`super::traffic`], each with the default policy (decisions
//! memoised) and with a copy of it that also names `rand.intn` (so nothing
//! is memoised and every request is evaluated), and the stream once more with
//! `--no-metrics` for the cost of the Prometheus metrics. The memo's hit rate
//! comes from the gateway's `/health` before and after each load.
//!
//! wrk cycles through the stream (each thread from its own offset), counts
//! 200 and 403 answers apart (a policy deny is an answer, not an error) and
//! everything else as an error. The load generator shares the machine's cores
//! with the gateway, so the figures are what both together reach.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::summary::{thousands, Summary};
use super::traffic::{self, Expect};
use crate::flags::BenchArgs;

/// The seed gateway's throughput at 16 connections (issue 15's table).
pub const SEED_GATEWAY_RPS: f64 = 2560.0;
/// The target on the distinct stream (issue 15).
pub const TARGET_RPS: f64 = 31_000.0;
/// The p99 target, in milliseconds.
pub const TARGET_P99_MS: f64 = 5.0;

/// What a load of the gateway measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadFigures {
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers with status 200.
    pub allowed: u64,
    /// Answers with status 403 (denied by the policy).
    pub denied: u64,
    /// Other statuses, and connect, read, write and timeout errors.
    pub errors: u64,
}

/// The memo's counters from `/health`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize)]
pub struct Memo {
    pub enabled: bool,
    pub lookups: u64,
    pub hits: u64,
}

/// Which requests a scenario sends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Traffic {
    /// The seed's request, over and over.
    Repeated,
    /// The seeded stream of distinct requests.
    Distinct,
}

/// The wrk script that sends `bodies` in turn and prints one `SUMMARY` line.
pub fn wrk_script(bodies: &[String]) -> Result<String> {
    let mut lua = String::from(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nlocal bodies = {\n",
    );
    for body in bodies {
        if body.contains("]==]") {
            bail!("a request body holds the Lua string end `]==]`");
        }
        lua.push_str("[==[");
        lua.push_str(body);
        lua.push_str("]==],\n");
    }
    lua.push_str(
        r#"}
local threads = {}
local started = 0
function setup(thread)
  thread:set("id", started)
  started = started + 1
  table.insert(threads, thread)
end
local requests = {}
local n = #bodies
local i = 0
allowed, denied, other = 0, 0, 0
function init(args)
  for k = 1, n do requests[k] = wrk.format(nil, nil, nil, bodies[k]) end
  i = (id * 4999) % n
end
function request()
  i = i % n + 1
  return requests[i]
end
function response(status, headers, body)
  if status == 200 then allowed = allowed + 1
  elseif status == 403 then denied = denied + 1
  else other = other + 1 end
end
done = function(summary, latency, requests)
  local a, d, o = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("allowed"); d = d + t:get("denied"); o = o + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    "SUMMARY requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f " ..
    "allowed=%d denied=%d other=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    a, d, o, e.connect, e.read, e.write, e.timeout))
end
"#,
    );
    Ok(lua)
}

/// Parses the `SUMMARY key=value ...` line the wrk script prints.
pub fn parse_wrk_summary(output: &str) -> Result<LoadFigures> {
    let line = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("SUMMARY "))
        .context("wrk printed no SUMMARY line")?;
    let get = |key: &str| -> Result<f64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .with_context(|| format!("wrk SUMMARY has no {key}"))?
            .parse::<f64>()
            .with_context(|| format!("wrk SUMMARY: {key} is not a number"))
    };
    let errors = [
        "other",
        "err_connect",
        "err_read",
        "err_write",
        "err_timeout",
    ]
    .iter()
    .map(|k| get(k))
    .sum::<Result<f64>>()?;
    Ok(LoadFigures {
        requests: get("requests")? as u64,
        rps: get("rps")?,
        p50_ms: get("p50_ms")?,
        p99_ms: get("p99_ms")?,
        allowed: get("allowed")? as u64,
        denied: get("denied")? as u64,
        errors: errors as u64,
    })
}

/// The gateway server under test, stopped (SIGTERM, then kill) on drop.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    fn start(
        xtask: &Path,
        dir: &Path,
        policy: Option<&Path>,
        log: &Path,
        extra: &[&str],
    ) -> Result<Server> {
        let mut cmd = Command::new(xtask);
        cmd.args(["a2a", "serve", "--addr", "127.0.0.1:0", "--decision-log"])
            .arg(log)
            .args(extra);
        if let Some(policy) = policy {
            cmd.arg("--policy").arg(policy);
        }
        let mut child = cmd
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", xtask.display()))?;
        let stderr = child.stderr.take().expect("piped");
        let mut server = Server {
            child,
            url: String::new(),
        };
        let mut lines = std::io::BufReader::new(stderr).lines();
        let first = lines
            .next()
            .transpose()
            .context("cannot read the gateway's output")?
            .context("the gateway exited before listening")?;
        server.url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .with_context(|| format!("the gateway did not say where it listens: {first:?}"))?
            .to_string();
        // Keep draining the server's stderr so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(server)
    }

    fn memo(&self) -> Result<Memo> {
        let text = ureq::get(format!("{}/health", self.url))
            .call()
            .context("GET /health failed")?
            .body_mut()
            .read_to_string()
            .context("cannot read /health")?;
        let health: serde_json::Value =
            serde_json::from_str(&text).context("/health is not JSON")?;
        serde_json::from_value(health["memo"].clone()).context("/health has no memo counters")
    }

    fn stop(&mut self) {
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One measured scenario.
struct Measured {
    figures: LoadFigures,
    hit_rate: Option<f64>,
    log_lines: usize,
}

fn measure(
    sh: &Shell,
    xtask: &Path,
    tmp: &Path,
    policy: Option<&Path>,
    script: &Path,
    secs: u64,
    extra: &[&str],
) -> Result<Measured> {
    let log = tmp.join("bench-decisions.jsonl");
    let _ = std::fs::remove_file(&log);
    let mut server = Server::start(xtask, tmp, policy, &log, extra)?;
    crate::a2a::probe(&server.url)
        .with_context(|| format!("the gateway at {} failed its probe", server.url))?;
    let before = server.memo()?;
    let target = format!("{}/a2a/perform", server.url);
    let dur = format!("{secs}s");
    let out = cmd!(
        sh,
        "wrk -t2 -c16 -d{dur} --timeout 2s --latency -s {script} {target}"
    )
    .quiet()
    .read()
    .context("wrk failed")?;
    let after = server.memo()?;
    server.stop();
    let lookups = after.lookups - before.lookups;
    let log_lines = std::fs::read(&log)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0);
    Ok(Measured {
        figures: parse_wrk_summary(&out)?,
        hit_rate: (after.enabled && lookups > 0)
            .then(|| (after.hits - before.hits) as f64 / lookups as f64),
        log_lines,
    })
}

/// Runs the four scenarios, prints their table and adds them to `summary`.
pub fn bench(
    sh: &Shell,
    xtask: &Path,
    tmp: &Path,
    args: &BenchArgs,
    summary: &mut Summary,
) -> Result<()> {
    if !super::on_path("wrk") {
        println!();
        println!("## Gateway");
        println!();
        println!("skipped: wrk is not installed (Debian: `apt-get install -y wrk`)");
        return Ok(());
    }
    let stream = traffic::stream(args.traffic_seed, args.distinct as usize);
    let expected_denied =
        stream.iter().filter(|(_, e)| *e != Expect::Allow).count() as f64 / stream.len() as f64;
    let to_body = |v: &serde_json::Value| serde_json::to_string(v).expect("serialises");
    let repeated = tmp.join("repeated.lua");
    std::fs::write(
        &repeated,
        wrk_script(&[to_body(&crate::a2a::seed_request())])?,
    )
    .context("cannot write the wrk script")?;
    let distinct = tmp.join("distinct.lua");
    let bodies: Vec<String> = stream.iter().map(|(v, _)| to_body(v)).collect();
    std::fs::write(&distinct, wrk_script(&bodies)?).context("cannot write the wrk script")?;
    // The default policy, and a copy that names a nondeterministic builtin in
    // a rule the decision never uses: the same decisions, none memoised.
    let unmemoised = tmp.join("a2a-unmemoised.rego");
    std::fs::write(
        &unmemoised,
        format!(
            "{}\n# Names a nondeterministic builtin, so no decision is memoised.\nsampled if rand.intn(\"bench\", 100) == 0\n",
            crate::a2a::DEFAULT_POLICY
        ),
    )
    .context("cannot write the unmemoised policy")?;

    println!();
    println!(
        "## Gateway: POST /a2a/perform, release `xtask a2a serve --decision-log`, `wrk -t2 -c16 -d{}s`",
        args.duration
    );
    println!();
    println!(
        "Distinct stream: {} requests from seed {}, {:.1} % of them denied by the default policy.",
        thousands(bodies.len() as f64),
        args.traffic_seed,
        100.0 * expected_denied
    );
    println!();
    println!("| traffic | policy | requests | req/s | p50 ms | p99 ms | denied | errors | memo hit rate | log lines | load |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let scenarios = [
        (Traffic::Repeated, None),
        (Traffic::Repeated, Some(unmemoised.as_path())),
        (Traffic::Distinct, None),
        (Traffic::Distinct, Some(unmemoised.as_path())),
    ];
    let mut with_metrics = 0.0;
    for (traffic, policy) in scenarios {
        let script = match traffic {
            Traffic::Repeated => &repeated,
            Traffic::Distinct => &distinct,
        };
        eprintln!(
            "bench: gateway, {traffic:?} traffic, memo {}",
            if policy.is_none() { "on" } else { "off" }
        );
        let m = measure(sh, xtask, tmp, policy, script, args.duration, &[])?;
        let f = &m.figures;
        let traffic_name = match traffic {
            Traffic::Repeated => "the seed's request repeated",
            Traffic::Distinct => "distinct stream",
        };
        let policy_name = if policy.is_none() {
            "default (memoised)"
        } else {
            "default + rand.intn (not memoised)"
        };
        let hit = m
            .hit_rate
            .map_or("off".to_string(), |h| format!("{:.1} %", 100.0 * h));
        let load = super::load_average();
        println!(
            "| {traffic_name} | {policy_name} | {} | {} | {:.3} | {:.3} | {:.1} % | {} | {hit} | {} | {} |",
            f.requests,
            thousands(f.rps),
            f.p50_ms,
            f.p99_ms,
            100.0 * f.denied as f64 / f.requests.max(1) as f64,
            f.errors,
            m.log_lines,
            load.split_whitespace().next().unwrap_or("?"),
        );
        let figure = format!(
            "{} req/s, p99 {:.1} ms, {} errors",
            thousands(f.rps),
            f.p99_ms,
            f.errors
        );
        let (work, reference, met) = match (traffic, policy.is_none()) {
            (Traffic::Repeated, true) => (
                "gateway, 16 connections, the same request repeated (decisions memoised)".to_string(),
                format!("seed {} req/s", thousands(SEED_GATEWAY_RPS)),
                None,
            ),
            (Traffic::Repeated, false) => (
                "gateway, same, decisions not memoised".to_string(),
                format!("target {}", thousands(TARGET_RPS)),
                Some(f.rps >= TARGET_RPS && f.p99_ms < TARGET_P99_MS && f.errors == 0),
            ),
            (Traffic::Distinct, true) => (
                format!(
                    "gateway, 16 connections, {} distinct requests, {:.0} % denied, memo hit rate {hit}",
                    thousands(bodies.len() as f64),
                    100.0 * f.denied as f64 / f.requests.max(1) as f64
                ),
                format!("target {} req/s, p99 < 5 ms, 0 errors", thousands(TARGET_RPS)),
                Some(f.rps >= TARGET_RPS && f.p99_ms < TARGET_P99_MS && f.errors == 0),
            ),
            (Traffic::Distinct, false) => (
                "gateway, same stream, decisions not memoised".to_string(),
                "(no target: Rego evaluation per request)".to_string(),
                None,
            ),
        };
        if (traffic, policy.is_none()) == (Traffic::Distinct, true) {
            with_metrics = f.rps;
        }
        summary.add(work, figure, reference, met);
    }
    // The same stream without the gateway's Prometheus metrics (issue 11).
    eprintln!("bench: gateway, Distinct traffic, memo on, --no-metrics");
    let bare = measure(
        sh,
        xtask,
        tmp,
        None,
        &distinct,
        args.duration,
        &["--no-metrics"],
    )?;
    let f = &bare.figures;
    println!(
        "| distinct stream, `--no-metrics` | default (memoised) | {} | {} | {:.3} | {:.3} | {:.1} % | {} | {} | {} | {} |",
        f.requests,
        thousands(f.rps),
        f.p50_ms,
        f.p99_ms,
        100.0 * f.denied as f64 / f.requests.max(1) as f64,
        f.errors,
        bare.hit_rate.map_or("off".to_string(), |h| format!("{:.1} %", 100.0 * h)),
        bare.log_lines,
        super::load_average().split_whitespace().next().unwrap_or("?"),
    );
    let cost = (1.0 - with_metrics / f.rps.max(f64::MIN_POSITIVE)) * 100.0;
    summary.add(
        "gateway, distinct stream: cost of the Prometheus metrics (with against `--no-metrics`)",
        format!(
            "{cost:.1} % ({} against {} req/s)",
            thousands(with_metrics),
            thousands(f.rps)
        ),
        "at most 10 % (issue 11); one run each",
        Some(cost <= 10.0),
    );
    println!();
    println!(
        "Every scenario logs every decision (`--decision-log`); log lines include the probe's 3. \
         The load generator runs on the same machine as the server and shares its cores."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_summary_is_parsed_and_errors_summed() {
        let out =
            "Running 10s test @ http://127.0.0.1:1/a2a/perform\n  2 threads and 16 connections\n\
                   SUMMARY requests=412345 duration_s=10.002 rps=41226.3 p50_ms=0.301 p99_ms=1.250 \
                   allowed=330000 denied=82342 other=2 err_connect=0 err_read=1 err_write=0 err_timeout=0\n";
        let f = parse_wrk_summary(out).unwrap();
        assert_eq!(
            f,
            LoadFigures {
                requests: 412_345,
                rps: 41_226.3,
                p50_ms: 0.301,
                p99_ms: 1.25,
                allowed: 330_000,
                denied: 82_342,
                errors: 3,
            }
        );
        assert!(parse_wrk_summary("no summary").is_err());
        assert!(parse_wrk_summary("SUMMARY requests=x").is_err());
    }

    #[test]
    fn the_wrk_script_holds_every_body_once() {
        let bodies = vec!["{\"a\":1}".to_string(), "{\"b\":[[2]]}".to_string()];
        let lua = wrk_script(&bodies).unwrap();
        assert_eq!(lua.matches("[==[").count(), 2);
        assert!(lua.contains("[==[{\"b\":[[2]]}]==],"));
        assert!(wrk_script(&["]==]".to_string()]).is_err());
    }
}
