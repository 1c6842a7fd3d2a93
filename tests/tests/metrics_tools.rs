//! The node's metrics as the tools operators already run read them: `promtool check metrics`
//! on the Prometheus text format, Python's `prometheus_client` parser, a real Prometheus
//! scraping the node (it asks for OpenMetrics first) and evaluating the shipped alert rules, the
//! rules' own unit tests (`promtool test rules`), and every query of the Grafana dashboard
//! evaluated by that Prometheus. All tools come from `scripts/setup` (Debian's packages).

use serde_json::Value;
use snpkms_e2e::{guest, Stack};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TEXT_004: &str = "text/plain;version=0.0.4";
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn deploy(path: &str) -> PathBuf {
    snpkms_testkit::workspace_root().join("deploy").join(path)
}

/// An HTTP client for loopback (the product's own, with its TLS provider).
fn http() -> reqwest::Client {
    let endpoint = snpkms_chain_client::RpcEndpoint::new("http://127.0.0.1").unwrap();
    snpkms_chain_client::http_client(&endpoint).unwrap()
}

/// `GET url` with `accept`: the content type and the body.
async fn get(url: &str, accept: Option<&str>) -> (String, String) {
    let mut request = http().get(url);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("GET");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (content_type, response.text().await.unwrap())
}

/// The sample names of an exposition (what queries refer to).
fn sample_names(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// The metric names a PromQL expression or rule file uses.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["snpkms_", "process_"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

/// One key release to the stack's demo guest.
async fn release(stack: &Stack, client: &mut snpkms_guest::GuestClient) {
    let app = stack.app();
    client
        .get_app_key(
            &guest(app, stack.compose_hash),
            app.0 .0,
            stack.compose_hash,
            None,
            stack.root,
        )
        .await
        .expect("keys");
}

fn run(cmd: &mut Command, stdin: Option<&str>) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup installs it)"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn both_formats_pass_the_standard_parsers_with_every_family_from_the_start() {
    let stack = Stack::start().await;
    let url = format!(
        "http://{}/metrics",
        stack.node.as_ref().unwrap().metrics_addr.unwrap()
    );

    // Before any request: every family, with its help text, its known label values at 0.
    let (content_type, text) = get(&url, Some(TEXT_004)).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    for line in [
        r#"snpkms_verification_failures_total{reason="signature"} 0"#,
        r#"snpkms_verification_failures_total{reason="policy"} 0"#,
        r#"snpkms_registry_read_errors_total{kind="no_quorum"} 0"#,
        r#"snpkms_requests_total{method="GetAppKey",code="Ok"} 0"#,
        r#"snpkms_grpc_connections_closed_total{reason="peer_share"} 0"#,
        &format!(
            r#"snpkms_build_info{{version="{}",simulator="true"}} 1"#,
            env!("CARGO_PKG_VERSION")
        ),
        "snpkms_serving 1",
        "snpkms_chain_view_healthy 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    let names = sample_names(&text);
    for name in [
        "snpkms_chain_head_block",
        "snpkms_chain_pinned_block",
        "snpkms_chain_pinned_block_timestamp_seconds",
        "snpkms_grpc_connections",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(names.contains(name), "no {name} in\n{text}");
    }
    let pinned: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("snpkms_chain_pinned_block "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(pinned > 0, "the pinned block is the chain's");

    // A release, so every counter family has a sample (the client's connection stays open).
    let mut client = stack.client().await;
    release(&stack, &mut client).await;
    let (_, text) = get(&url, Some(TEXT_004)).await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("snpkms_grpc_connections ") && l != "snpkms_grpc_connections 0"),
        "the client's connection is counted:\n{text}"
    );
    drop(client);
    let (ok, lint) = run(
        Command::new("promtool").args(["check", "metrics"]),
        Some(&text),
    );
    assert!(
        ok && lint.trim().is_empty(),
        "promtool check metrics:\n{lint}"
    );

    // Python's prometheus_client (text format parser): every counter keeps its samples.
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families as parse\n\
        print(json.dumps({f.name: [f.type, len(f.samples)] for f in parse(sys.stdin.read())}))";
    let (ok, out) = run(Command::new("python3").args(["-c", script]), Some(&text));
    assert!(ok, "prometheus_client: {out}");
    let families: serde_json::Map<String, Value> = serde_json::from_str(&out).unwrap();
    let counters: Vec<_> = families.iter().filter(|(_, v)| v[0] == "counter").collect();
    assert!(counters.len() >= 10, "{families:?}");
    for (name, v) in counters {
        assert!(v[1].as_u64().unwrap() > 0, "{name} lost its samples: {v}");
    }

    // OpenMetrics to those who ask for it first.
    let (content_type, open) = get(&url, Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(open.trim_end().ends_with("# EOF"), "{open}");
    assert!(open.contains("# TYPE snpkms_requests counter"), "{open}");
}

#[test]
fn the_alert_rules_check_and_pass_their_unit_tests() {
    let (ok, out) = run(
        Command::new("promtool")
            .args(["check", "rules"])
            .arg(deploy("prometheus/alerts.yml")),
        None,
    );
    assert!(ok, "promtool check rules:\n{out}");
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let declared = rules.matches("- alert: ").count();
    assert!(
        out.contains(&format!("SUCCESS: {declared} rules found")),
        "{out}"
    );
    // Every alert has a unit test that makes it fire.
    let tests = std::fs::read_to_string(deploy("prometheus/alerts.test.yml")).unwrap();
    for name in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {name}")),
            "alerts.test.yml has no test for {name}"
        );
    }
    let (ok, out) = run(
        Command::new("promtool")
            .args(["test", "rules", "alerts.test.yml"])
            .current_dir(deploy("prometheus")),
        None,
    );
    assert!(ok && out.contains("SUCCESS"), "promtool test rules:\n{out}");
}

/// A Prometheus server on loopback; killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(target: &str, rules: &Path) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: snpkms\n    static_configs:\n      - targets: [\"{target}\"]\n",
                rules.display()
            ),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (scripts/setup installs it)");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// `GET /api/v1/<path>` with `params`: the `data` of a successful answer, or the error.
    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/{path}", self.url), params)
            .unwrap();
        let response = http().get(url).send().await.map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(body.to_string());
        }
        Ok(body["data"].clone())
    }

    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api("query", &[("query", expr)]).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until `check` holds (Prometheus starts, scrapes, evaluates).
    async fn until<T>(&self, what: &str, mut check: impl AsyncFnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = check(self).await {
                return v;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("prometheus.log"));
                panic!(
                    "Prometheus never got to: {what}\n{}",
                    log.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn value(sample: &Value) -> &str {
    sample["value"][1].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_the_node_and_runs_the_rules_and_the_dashboard() {
    let stack = Stack::start().await;
    let target = stack
        .node
        .as_ref()
        .unwrap()
        .metrics_addr
        .unwrap()
        .to_string();
    // A release, so the per-app family has a series.
    release(&stack, &mut stack.client().await).await;
    let rules = deploy("prometheus/alerts.yml");
    let prometheus = Prometheus::start(&target, &rules);

    prometheus
        .until("the node's target up", async |p| {
            let up = p.query(r#"up{job="snpkms"}"#).await.ok()?;
            (up.len() == 1 && value(&up[0]) == "1").then_some(())
        })
        .await;
    let serving = prometheus.query("snpkms_serving").await.unwrap();
    assert_eq!(value(&serving[0]), "1");
    let build = prometheus.query("snpkms_build_info").await.unwrap();
    assert_eq!(build[0]["metric"]["simulator"], "true", "{build:?}");

    // It scraped OpenMetrics (the family is `snpkms_requests`; text 0.0.4 would have named it
    // `snpkms_requests_total`), with the help text.
    let metadata = prometheus
        .api("metadata", &[("metric", "snpkms_requests")])
        .await
        .unwrap();
    assert_eq!(
        metadata["snpkms_requests"][0]["type"], "counter",
        "{metadata}"
    );
    assert!(
        metadata["snpkms_requests"][0]["help"]
            .as_str()
            .unwrap()
            .contains("gRPC requests"),
        "{metadata}"
    );

    // Every alert rule evaluates without error; a healthy node fires none (evaluations
    // after the first scrape: they run every second).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let groups = prometheus
        .until("every rule evaluated", async |p| {
            let declared = (std::fs::read_to_string(&rules).unwrap())
                .matches("- alert: ")
                .count();
            let data = p.api("rules", &[]).await.ok()?;
            let rules = data["groups"][0]["rules"].as_array()?.clone();
            let evaluated = rules.iter().all(|r| {
                r["lastEvaluation"]
                    .as_str()
                    .is_some_and(|t| !t.starts_with("0001"))
            });
            (rules.len() == declared && evaluated).then_some(rules)
        })
        .await;
    for rule in &groups {
        assert_eq!(rule["health"], "ok", "{rule}");
        assert_eq!(rule["state"], "inactive", "a healthy node fires {rule}");
    }

    // Every name the rules and the dashboard use is one the node serves.
    let (_, text) = get(&format!("http://{target}/metrics"), Some(TEXT_004)).await;
    let served = sample_names(&text);
    let rules_text = std::fs::read_to_string(&rules).unwrap();
    let dashboard_text = std::fs::read_to_string(deploy("grafana/snpkms-dashboard.json")).unwrap();
    for name in metric_names(&rules_text).union(&metric_names(&dashboard_text)) {
        assert!(served.contains(name), "{name} is not served:\n{text}");
    }

    // Every dashboard query is valid PromQL that Prometheus answers, with Grafana's variables
    // as Grafana fills them in; the node's own panels have data.
    let dashboard: Value = serde_json::from_str(&dashboard_text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 12);
    let mut with_data = 0;
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$instance", ".*");
            let result = prometheus
                .query(&expr)
                .await
                .unwrap_or_else(|e| panic!("{}: {expr}: {e}", panel["title"]));
            with_data += usize::from(!result.is_empty());
        }
    }
    assert!(
        with_data >= 10,
        "only {with_data} dashboard queries have data"
    );
}
