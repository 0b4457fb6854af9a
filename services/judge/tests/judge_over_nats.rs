//! Over NATS: JudgeRequest -> JudgeReport, with the judge killed right after the request
//! arrived and the same request delivered again: exactly one report and one event.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aml_bus::topology::{EVENTS_STREAM, subjects};
use aml_bus::{Publisher, Topology};
use aml_integration_tests::{NatsServer, wait_until};
use aml_proto::v1::{JudgeReport, JudgeRequest};
use futures::StreamExt;
use prost::Message;

fn start_judge(nats: &NatsServer, storage: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_judge"))
        .env_clear()
        .env("AML_NATS__URL", nats.url())
        .env("AML_STORAGE__URL", format!("file://{}", storage.display()))
        .env("AML_BUS__ACK_WAIT_SECS", "2")
        .arg("--cache-dir")
        .arg(storage.join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("judge starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_request_yields_exactly_one_report() {
    let nats = NatsServer::start().expect("nats-server");
    let client = nats.connect().await.expect("connects");
    let topology = Topology::new(client.clone());
    topology.ensure_streams().await.expect("streams");
    let dir = tempfile::tempdir().expect("storage");
    let gold = (0..30)
        .map(|i| {
            let label = ["match", "no_match", "edge"][i % 3];
            serde_json::json!({"id": format!("g{i}"), "instruction": "decide", "input": format!("Customer (person):\n  name: Person {i}\n  date of birth: 1980-01-0{}\n  nationality: PT", i % 9 + 1),
                "output": format!("{} — x", label.to_uppercase()), "cot": "c", "difficulty": "easy", "label": label}).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let predictions = (0..30)
        .map(|i| {
            let label = ["match", "no_match", "edge"][(i + i / 10) % 3];
            serde_json::json!({"id": format!("g{i}"), "label": label, "output": format!("{} — nationality PT", label.to_uppercase()), "cot": "", "score": (i % 10) as f64 / 10.0}).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("gold.jsonl"), gold).expect("gold");
    std::fs::write(dir.path().join("predictions.jsonl"), predictions).expect("predictions");
    let base = format!("file://{}", dir.path().display());
    let request = JudgeRequest {
        request_id: "phase-easy".into(),
        gold_url: format!("{base}/gold.jsonl"),
        predictions_url: format!("{base}/predictions.jsonl"),
        report_url: format!("{base}/reports/phase-easy.json"),
        provider: "offline".into(),
    };
    let mut events = client
        .subscribe(subjects::JUDGE_REPORT)
        .await
        .expect("subscribe");
    Publisher::new(topology.jetstream().clone())
        .publish(subjects::JUDGE, &request, Some("phase-easy"))
        .await
        .expect("request");

    let mut first = start_judge(&nats, dir.path());
    tokio::time::sleep(Duration::from_millis(150)).await;
    first.kill().expect("SIGKILL the judge");
    first.wait().expect("reaped");
    let mut second = start_judge(&nats, dir.path());
    let report_path = dir.path().join("reports/phase-easy.json");
    let written = wait_until(Duration::from_secs(30), || async { report_path.exists() }).await;
    assert!(written, "no report written");
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("event in time")
        .expect("event");
    Publisher::new(topology.jetstream().clone())
        .publish(
            subjects::JUDGE,
            &request,
            Some("phase-easy-delivered-again"),
        )
        .await
        .expect("the same request once more");
    let mut consumer = topology
        .consumer(&aml_bus::ConsumerSpec::judge(), Duration::from_secs(2))
        .await
        .expect("consumer");
    let mut handled = false;
    for _ in 0..100 {
        let info = consumer.info().await.expect("info");
        if info.num_pending == 0 && info.num_ack_pending == 0 && info.delivered.stream_sequence >= 2
        {
            handled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(handled, "the repeated request was handled");
    second.kill().expect("stop the judge");
    second.wait().expect("reaped");

    let report = JudgeReport::decode(event.payload).expect("JudgeReport");
    assert_eq!(report.n, 30);
    assert_eq!(report.request_id, "phase-easy");
    let mut stream = topology
        .jetstream()
        .get_stream(EVENTS_STREAM)
        .await
        .expect("events");
    let state = stream.info().await.expect("info").state.clone();
    assert_eq!(state.messages, 1, "exactly one JudgeReport event");
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).expect("report")).expect("json");
    assert_eq!(stored["n"], 30);
    let reports = std::fs::read_dir(dir.path().join("reports"))
        .expect("reports")
        .count();
    assert_eq!(reports, 1, "exactly one report object");
}
