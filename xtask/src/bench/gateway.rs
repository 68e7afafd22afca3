//! The gateway benchmark: the release `xtask a2a serve` on loopback, with its
//! decision log on, loaded by `wrk` (2 threads, 16 connections).
//!
//! Single loads: the seed's request repeated, with the default policy
//! (decisions memoised) and with a copy of it that also names `rand.intn` (so
//! nothing is memoised and every request is evaluated), and the seeded stream
//! of distinct requests of [`super::traffic`] with that copy.
//!
//! Compared loads, in rounds: the stream to `POST /a2a/perform`, the same
//! with `--no-metrics`, and the same requests as A2A 1.0 `SendMessage` calls
//! to `/a2a/v1`. Each round runs the three in a new order, so a change in the
//! machine's load falls on each of them alike; the table shows every round,
//! and the summary the median of each and the median of the rounds' ratios
//! (the cost of the metrics, `SendMessage` against `/a2a/perform`). One
//! load of each was not enough: on the shared 2-core machine single loads of
//! the same binary differ by 10 to 20 %.
//!
//! The memo's hit rate comes from the gateway's `/health` before and after
//! each load. wrk cycles through the stream (each thread from its own
//! offset), counts allowed and denied answers apart (a policy deny is an
//! answer, not an error: 403 from `/a2a/perform`, a task in
//! `TASK_STATE_REJECTED` from `SendMessage`) and everything else as an error.
//! The load generator shares the machine's cores with the gateway, so the
//! figures are what both together reach.

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
/// `SendMessage` may be this much slower than `/a2a/perform` (issue 15).
pub const SEND_MESSAGE_MAX_SLOWDOWN: f64 = 0.25;
/// The metrics may cost this much throughput (issue 11).
pub const METRICS_MAX_COST: f64 = 0.10;

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

/// Where the benchmark's requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /a2a/perform` with the request as the body.
    Perform,
    /// `POST /a2a/v1`: a JSON-RPC `SendMessage` whose one data part is the request.
    SendMessage,
}

impl Route {
    pub fn path(self) -> &'static str {
        match self {
            Route::Perform => "/a2a/perform",
            Route::SendMessage => crate::a2a::v1::RPC_PATH,
        }
    }

    /// The HTTP body for request number `i` of the stream.
    pub fn body(self, i: usize, request: &serde_json::Value) -> String {
        let value = match self {
            Route::Perform => return request.to_string(),
            Route::SendMessage => serde_json::json!({
                "jsonrpc": "2.0",
                "id": i,
                "method": "SendMessage",
                "params": {"message": {
                    "messageId": format!("bench-{i}"),
                    "role": "ROLE_USER",
                    "parts": [{"data": request}],
                }},
            }),
        };
        value.to_string()
    }
}

/// The wrk script that sends `bodies` in turn to `route` and prints one
/// `SUMMARY` line.
pub fn wrk_script(route: Route, bodies: &[String]) -> Result<String> {
    let mut lua = String::from(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    );
    // How an answer is counted: by status from /a2a/perform; from JSON-RPC
    // (always 200) by the task's state, and an error object is an error.
    let response = match route {
        Route::Perform => {
            "  if status == 200 then allowed = allowed + 1\n  elseif status == 403 then denied = denied + 1\n  else other = other + 1 end\n"
        }
        Route::SendMessage => {
            lua.push_str("wrk.headers[\"A2A-Version\"] = \"1.0\"\n");
            "  if status ~= 200 then other = other + 1\n  elseif string.find(body, '\"TASK_STATE_COMPLETED\"', 1, true) then allowed = allowed + 1\n  elseif string.find(body, '\"TASK_STATE_REJECTED\"', 1, true) then denied = denied + 1\n  else other = other + 1 end\n"
        }
    };
    lua.push_str("local bodies = {\n");
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
RESPONSE_COUNTS
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
"#
        .replace("RESPONSE_COUNTS\n", response)
        .as_str(),
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

/// One load of the gateway.
struct Load<'a> {
    route: Route,
    /// The wrk script (for `route`).
    script: &'a Path,
    /// A policy other than the default.
    policy: Option<&'a Path>,
    /// More `a2a serve` flags.
    extra: &'a [&'a str],
}

fn measure(sh: &Shell, xtask: &Path, tmp: &Path, load: &Load, secs: u64) -> Result<Measured> {
    let Load {
        route,
        script,
        policy,
        extra,
    } = *load;
    let log = tmp.join("bench-decisions.jsonl");
    let _ = std::fs::remove_file(&log);
    let mut server = Server::start(xtask, tmp, policy, &log, extra)?;
    crate::a2a::probe(&server.url)
        .with_context(|| format!("the gateway at {} failed its probe", server.url))?;
    let before = server.memo()?;
    let target = format!("{}{}", server.url, route.path());
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

/// The table row of one load.
fn row(name: &str, policy: &str, m: &Measured) -> String {
    let f = &m.figures;
    format!(
        "| {name} | {policy} | {} | {} | {:.3} | {:.3} | {:.1} % | {} | {} | {} | {} |",
        f.requests,
        thousands(f.rps),
        f.p50_ms,
        f.p99_ms,
        100.0 * f.denied as f64 / f.requests.max(1) as f64,
        f.errors,
        m.hit_rate
            .map_or("off".to_string(), |h| format!("{:.1} %", 100.0 * h)),
        m.log_lines,
        super::load_average()
            .split_whitespace()
            .next()
            .unwrap_or("?"),
    )
}

fn figure(f: &LoadFigures) -> String {
    format!(
        "{} req/s, p99 {:.1} ms, {} errors",
        thousands(f.rps),
        f.p99_ms,
        f.errors
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The load whose throughput is the median of `loads` (the lower middle one
/// of an even count).
fn median_load(loads: &[Measured]) -> &Measured {
    let mut sorted: Vec<&Measured> = loads.iter().collect();
    sorted.sort_by(|a, b| a.figures.rps.total_cmp(&b.figures.rps));
    sorted[(sorted.len() - 1) / 2]
}

/// Runs the single and the compared loads, prints their table and adds them
/// to `summary`.
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
    let write_script = |name: &str, route: Route, requests: &[&serde_json::Value]| {
        let bodies: Vec<String> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| route.body(i, r))
            .collect();
        let path = tmp.join(name);
        std::fs::write(&path, wrk_script(route, &bodies)?)
            .context("cannot write the wrk script")?;
        anyhow::Ok(path)
    };
    let seed = crate::a2a::seed_request();
    let requests: Vec<&serde_json::Value> = stream.iter().map(|(v, _)| v).collect();
    let repeated = write_script("repeated.lua", Route::Perform, &[&seed])?;
    let distinct = write_script("distinct.lua", Route::Perform, &requests)?;
    let messages = write_script("send-message.lua", Route::SendMessage, &requests)?;
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
        "## Gateway: release `xtask a2a serve --decision-log`, `wrk -t2 -c16 -d{}s`",
        args.duration
    );
    println!();
    println!(
        "Distinct stream: {} requests from seed {}, {:.1} % of them denied by the default policy.",
        thousands(stream.len() as f64),
        args.traffic_seed,
        100.0 * expected_denied
    );
    println!();
    println!("| traffic | policy | requests | req/s | p50 ms | p99 ms | denied | errors | memo hit rate | log lines | load |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let memoised = "default (memoised)";
    let not_memoised = "default + rand.intn (not memoised)";
    let single = [
        (
            "POST /a2a/perform, the seed's request repeated",
            &repeated,
            None,
        ),
        (
            "POST /a2a/perform, the seed's request repeated",
            &repeated,
            Some(unmemoised.as_path()),
        ),
        (
            "POST /a2a/perform, distinct stream",
            &distinct,
            Some(unmemoised.as_path()),
        ),
    ];
    for (k, (name, script, policy)) in single.into_iter().enumerate() {
        eprintln!(
            "bench: gateway, {name}, memo {}",
            if policy.is_none() { "on" } else { "off" }
        );
        let load = Load {
            route: Route::Perform,
            script,
            policy,
            extra: &[],
        };
        let m = measure(sh, xtask, tmp, &load, args.duration)?;
        let policy_name = if policy.is_none() {
            memoised
        } else {
            not_memoised
        };
        println!("{}", row(name, policy_name, &m));
        let f = &m.figures;
        match k {
            0 => summary.add(
                "gateway, 16 connections, the same request repeated (decisions memoised)",
                figure(f),
                format!("seed {} req/s", thousands(SEED_GATEWAY_RPS)),
                None,
            ),
            1 => summary.add(
                "gateway, same, decisions not memoised",
                figure(f),
                format!("target {}", thousands(TARGET_RPS)),
                Some(f.rps >= TARGET_RPS && f.p99_ms < TARGET_P99_MS && f.errors == 0),
            ),
            _ => summary.add(
                "gateway, distinct stream, decisions not memoised",
                figure(f),
                "(no target: Rego evaluation per request)",
                None,
            ),
        }
    }

    // The compared loads, in rounds, each round in a new order.
    let compared = [
        (
            "POST /a2a/perform, distinct stream",
            Load {
                route: Route::Perform,
                script: &distinct,
                policy: None,
                extra: &[],
            },
        ),
        (
            "POST /a2a/perform, distinct stream, `--no-metrics`",
            Load {
                route: Route::Perform,
                script: &distinct,
                policy: None,
                extra: &["--no-metrics"],
            },
        ),
        (
            "A2A `SendMessage`, distinct stream",
            Load {
                route: Route::SendMessage,
                script: &messages,
                policy: None,
                extra: &[],
            },
        ),
    ];
    let mut results: [Vec<Measured>; 3] = Default::default();
    for round in 0..args.rounds as usize {
        for k in 0..compared.len() {
            let which = (round + k) % compared.len();
            let (name, load) = &compared[which];
            eprintln!("bench: gateway, round {}, {name}", round + 1);
            let m = measure(sh, xtask, tmp, load, args.duration)?;
            println!(
                "{}",
                row(&format!("{name} (round {})", round + 1), memoised, &m)
            );
            results[which].push(m);
        }
    }
    let [perform, bare, messages] = &results;
    let rounds = perform.len();
    let rps = |loads: &[Measured], i: usize| loads[i].figures.rps;
    // How much slower `a` is than `b` (than a load that got nothing done, infinitely).
    let below = |a: f64, b: f64| if b > 0.0 { 1.0 - a / b } else { f64::INFINITY };
    let metrics_cost = median(
        (0..rounds)
            .map(|i| below(rps(perform, i), rps(bare, i)))
            .collect(),
    );
    let slowdown = median(
        (0..rounds)
            .map(|i| below(rps(messages, i), rps(perform, i)))
            .collect(),
    );
    let p = median_load(perform);
    let f = &p.figures;
    let hit = p
        .hit_rate
        .map_or("off".to_string(), |h| format!("{:.1} %", 100.0 * h));
    summary.add(
        format!(
            "gateway, 16 connections, {} distinct requests, {:.0} % denied, memo hit rate {hit} (median of {rounds})",
            thousands(stream.len() as f64),
            100.0 * f.denied as f64 / f.requests.max(1) as f64
        ),
        figure(f),
        format!("target {} req/s, p99 < 5 ms, 0 errors", thousands(TARGET_RPS)),
        Some(f.rps >= TARGET_RPS && f.p99_ms < TARGET_P99_MS && f.errors == 0),
    );
    let m = median_load(messages);
    summary.add(
        format!("gateway, the same stream as A2A `SendMessage` (median of {rounds})"),
        format!(
            "{}; {:.1} % below `/a2a/perform` (median of the rounds)",
            figure(&m.figures),
            100.0 * slowdown
        ),
        format!(
            "at most {:.0} % below `/a2a/perform`",
            100.0 * SEND_MESSAGE_MAX_SLOWDOWN
        ),
        Some(slowdown <= SEND_MESSAGE_MAX_SLOWDOWN && m.figures.errors == 0),
    );
    summary.add(
        "gateway, distinct stream: cost of the Prometheus metrics (with against `--no-metrics`)",
        format!(
            "{:.1} % (median of {rounds} rounds; {} against {} req/s in the median loads)",
            100.0 * metrics_cost,
            thousands(f.rps),
            thousands(median_load(bare).figures.rps)
        ),
        format!("at most {:.0} % (issue 11)", 100.0 * METRICS_MAX_COST),
        Some(metrics_cost <= METRICS_MAX_COST),
    );
    println!();
    println!(
        "Every load logs every decision (`--decision-log`); log lines include the probe's 3. \
         The load generator runs on the same machine as the server and shares its cores. \
         Rounds: the three compared loads, each round in a new order."
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
        let lua = wrk_script(Route::Perform, &bodies).unwrap();
        assert_eq!(lua.matches("[==[").count(), 2);
        assert!(lua.contains("[==[{\"b\":[[2]]}]==],"));
        assert!(lua.contains("status == 403") && !lua.contains("RESPONSE_COUNTS"));
        assert!(wrk_script(Route::Perform, &["]==]".to_string()]).is_err());
        let lua = wrk_script(Route::SendMessage, &bodies).unwrap();
        assert!(lua.contains("TASK_STATE_REJECTED") && lua.contains("A2A-Version"));
    }
}
