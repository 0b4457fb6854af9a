//! The lifecycle as separate processes: the six service binaries (generator, validator,
//! trainer, judge, scheduler, inference-worker) run against one real nats-server and file
//! storage, and `aml` alone drives a run through them: dataset, 3-phase training, judging,
//! banks' alerts, a batch and its report. Every service's `/metrics` and `/healthz` answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aml_integration_tests::NatsServer;

const SERVICES: [&str; 6] = [
    "generator",
    "validator",
    "trainer",
    "judge",
    "scheduler",
    "inference-worker",
];

/// The workspace's binaries sit beside `aml`; `cargo build --bins` (run by `make test`)
/// builds them.
fn binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_aml")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

struct Lifecycle {
    env: Vec<(String, String)>,
    dir: PathBuf,
}

impl Lifecycle {
    /// Runs `aml` with `args`, returning its standard output; fails with its standard error.
    fn aml(&self, args: &[&str]) -> String {
        let output = Command::new(binary("aml"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .output()
            .expect("aml runs");
        if !output.status.success() {
            let logs: Vec<String> = SERVICES
                .iter()
                .map(|service| format!("--- {service}:\n{}", self.log_tail(service)))
                .collect();
            panic!(
                "aml {args:?} failed:\n{}\n{}",
                String::from_utf8_lossy(&output.stderr),
                logs.join("\n")
            );
        }
        String::from_utf8(output.stdout).expect("UTF-8")
    }

    fn spawn(&self, service: &str, metrics_port: u16) -> Child {
        let log = std::fs::File::create(self.dir.join(format!("{service}.log"))).expect("log");
        Command::new(binary(service))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "AML_TELEMETRY__METRICS_ADDR",
                format!("127.0.0.1:{metrics_port}"),
            )
            .env("AML_MODEL_CACHE", self.dir.join("model-cache"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("{service} starts: {error}"))
    }

    fn log_tail(&self, service: &str) -> String {
        let text =
            std::fs::read_to_string(self.dir.join(format!("{service}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn http_get(port: u16, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut response = String::new();
    stream.read_to_string(&mut response).ok();
    response
}

/// The value of the sample `name{labels}` in a Prometheus exposition.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

/// `count` distinct free ports: every listener is held until all are chosen, so the system
/// cannot hand the same port out twice.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("bound").port())
        .collect()
}

#[test]
fn six_service_binaries_run_the_lifecycle_driven_by_aml() {
    let nats = NatsServer::start().expect("nats-server");
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().to_path_buf();
    let store = dir.join("store");
    let model = dir.join("base-model");
    let run_out = store.join("models/life");
    let env = vec![
        ("AML_NATS__URL".to_owned(), nats.url()),
        (
            "AML_STORAGE__URL".to_owned(),
            format!("file://{}", store.display()),
        ),
        ("AML_TELEMETRY__LOG_LEVEL".to_owned(), "info".to_owned()),
        (
            "AML_SCORING__BANKS".to_owned(),
            r#"["alpha","bravo"]"#.to_owned(),
        ),
        ("AML_SCORING__SCHEDULE".to_owned(), String::new()),
        ("AML_SCORING__SHARD_SIZE".to_owned(), "60".to_owned()),
        (
            "AML_SCORING__MODEL_URL".to_owned(),
            model.display().to_string(),
        ),
        (
            "AML_SCORING__ADAPTER_URL".to_owned(),
            run_out.join("adapter").display().to_string(),
        ),
    ];
    let lifecycle = Lifecycle {
        env,
        dir: dir.clone(),
    };
    lifecycle.aml(&[
        "model",
        "init-tiny",
        "--out",
        model.to_str().unwrap(),
        "--seed",
        "2",
    ]);

    let ports = free_ports(SERVICES.len());
    let mut children: Vec<Child> = SERVICES
        .iter()
        .zip(&ports)
        .map(|(service, port)| lifecycle.spawn(service, *port))
        .collect();
    let started = Instant::now();
    for ((service, port), child) in SERVICES.iter().zip(&ports).zip(&mut children) {
        while !http_get(*port, "/healthz").ends_with("ok\n") {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{service} not healthy within 60 s:\n{}",
                lifecycle.log_tail(service)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            child.try_wait().expect("status").is_none(),
            "{service} exited:\n{}",
            lifecycle.log_tail(service)
        );
    }

    let ready = json_lines(&lifecycle.aml(&[
        "request",
        "generate",
        "--run",
        "life",
        "--per-tier",
        "120",
        "--seed",
        "5",
        "--timeout-secs",
        "300",
    ]));
    let dataset_url = ready[0]["dataset_url"]
        .as_str()
        .expect("dataset_url")
        .to_owned();
    assert!(ready[0]["train_count"].as_u64().unwrap() > 100, "{ready:?}");
    assert_eq!(ready[0]["validation_count"], 100);

    // The default --cot true --distill true: the CoT teacher's phases, then the scorer's.
    let config = serde_json::json!({"lora_r": 4, "lr": 2e-3, "batch_size": 8, "grad_accum": 1,
        "epochs": [1, 1, 1], "max_seq_len": 512, "judge_items": 12, "judge_max_new_tokens": 8,
        "distill_max_new_tokens": 16});
    let phases = json_lines(&lifecycle.aml(&[
        "request",
        "train",
        "--run",
        "life",
        "--base-model",
        model.to_str().unwrap(),
        "--dataset",
        &dataset_url,
        "--output",
        run_out.to_str().unwrap(),
        "--config-json",
        &config.to_string(),
        "--timeout-secs",
        "300",
    ]));
    let names: Vec<(&str, &str)> = phases
        .iter()
        .map(|p| (p["stage"].as_str().unwrap(), p["phase"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("teacher", "DIFFICULTY_EASY"),
            ("teacher", "DIFFICULTY_MEDIUM"),
            ("teacher", "DIFFICULTY_HARD"),
            ("", "DIFFICULTY_EASY"),
            ("", "DIFFICULTY_MEDIUM"),
            ("", "DIFFICULTY_HARD")
        ]
    );
    assert!(
        phases[0]["adapter_url"]
            .as_str()
            .unwrap()
            .ends_with("teacher/easy/adapter")
    );
    assert!(phases.iter().all(|phase| phase["gate_passed"] == true));
    assert!(run_out.join("adapter/adapter_config.json").exists());
    let record = |folder: &str| -> serde_json::Value {
        let file = run_out.join(folder).join("adapter/aml_training.json");
        serde_json::from_slice(&std::fs::read(file).expect("training record")).expect("json")
    };
    assert_eq!(record("teacher/hard")["answer_format"], "reasoning_first");
    assert_eq!(record("hard")["answer_format"], "decision_first");
    assert_eq!(record("hard")["distilled_from"], "teacher/adapter");

    let report = json_lines(&lifecycle.aml(&[
        "request",
        "judge",
        "--id",
        "life-hard",
        "--gold",
        &format!("{dataset_url}/validation.jsonl"),
        "--predictions",
        &format!(
            "file://{}",
            run_out.join("hard/predictions.jsonl").display()
        ),
        "--timeout-secs",
        "300",
    ]));
    assert_eq!(report[0]["n"], 12, "{report:?}");
    assert!(store.join("reports/life-hard.json").exists());

    let alerts = dir.join("alerts");
    lifecycle.aml(&[
        "alerts",
        "synth",
        "--banks",
        "alpha,bravo",
        "--count",
        "300",
        "--seed",
        "4",
        "--out",
        alerts.to_str().unwrap(),
    ]);
    for bank in ["alpha", "bravo"] {
        let file = alerts.join(format!("{bank}.jsonl"));
        lifecycle.aml(&["alerts", "push", "--bank", bank, file.to_str().unwrap()]);
    }
    let alpha = alerts.join("alpha.jsonl");
    let again = lifecycle.aml(&["alerts", "push", "--bank", "alpha", alpha.to_str().unwrap()]);
    assert!(
        again.contains("0 alerts stored on aml.alerts.alpha")
            && again.contains("the copy pushed first is the one scored"),
        "a repeated push stores nothing and says why: {again}"
    );
    let batch = json_lines(&lifecycle.aml(&[
        "batch",
        "run",
        "--id",
        "life-batch",
        "--timeout-secs",
        "300",
    ]));
    let batch = &batch[0];
    assert_eq!(
        batch["alerts_in"], 300,
        "each alert once, the repeated push dropped: {batch}"
    );
    assert_eq!(batch["completion_rate"], 1.0, "{batch}");
    let scored = batch["scored"].as_f64().unwrap();
    assert!(scored > 0.0);

    for (service, port) in SERVICES.iter().zip(&ports) {
        let metrics = http_get(*port, "/metrics");
        let acked = sample(
            &metrics,
            &format!("aml_bus_acked_total{{consumer=\"{service}\"}}"),
        );
        assert!(
            acked.is_some_and(|count| count >= 1.0),
            "{service} acked nothing:\n{metrics}\n{}",
            lifecycle.log_tail(service)
        );
    }
    let worker = http_get(ports[5], "/metrics");
    assert!(
        worker
            .lines()
            .any(|line| line.starts_with("aml_worker_alerts_scored_total")
                && line.ends_with(&format!(" {scored}"))),
        "the worker's counter equals the report's scored count:\n{worker}"
    );
    let scheduler = http_get(ports[4], "/metrics");
    assert!(
        sample(&scheduler, "aml_scheduler_alerts_total{outcome=\"taken\"}") == Some(300.0),
        "{scheduler}"
    );

    for child in &mut children {
        child.kill().ok();
        child.wait().ok();
    }

    let mut names = Vec::new();
    for bank in ["alpha", "bravo"] {
        let text = std::fs::read_to_string(alerts.join(format!("{bank}.jsonl"))).expect("alerts");
        for alert in json_lines(&text) {
            for who in ["party", "entry"] {
                names.extend(alert[who]["name"].as_str().map(str::to_owned));
            }
        }
    }
    assert!(names.len() >= 300);
    for service in SERVICES {
        let log = std::fs::read_to_string(dir.join(format!("{service}.log"))).expect("log");
        for name in &names {
            assert!(
                !log.contains(name.as_str()),
                "{service}'s log shows alert content ({name}): logs carry ids only"
            );
        }
    }
}
