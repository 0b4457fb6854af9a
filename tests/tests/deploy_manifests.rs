//! `compose.yaml` and every manifest under `k8s/` hold together: each service, volume, build
//! stage, Secret and key, ConfigMap and key, selector, named port and KEDA consumer that one
//! object names exists, and every `AML_*` variable they set is a configuration key the
//! binaries accept. `docker compose config` also accepts the file where Docker Compose is
//! installed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aml_bus::ConsumerSpec;
use aml_bus::topology::JOBS_STREAM;
use aml_runtime::{AmlConfig, ConfigSources};
use serde::Deserialize;
use serde_yaml::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn documents(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            value.apply_merge().expect("merge keys");
            value
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => String::new(),
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_mapping()
        .map(|mapping| mapping.keys().map(text).collect())
        .unwrap_or_default()
}

/// `${NAME:-default}` as the shell would expand it with NAME unset.
fn interpolate(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let inner = &rest[start + 2..end];
        out.push_str(inner.split_once(":-").map_or("", |(_, default)| default));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Loads the configuration from `variables` as the binaries would.
fn assert_configuration(variables: &BTreeMap<String, String>, whose: &str) {
    let sources = ConfigSources {
        environment: variables.clone().into_iter().collect(),
        ..ConfigSources::default()
    };
    if let Err(error) = sources.load::<AmlConfig>() {
        panic!("{whose}: {error}");
    }
}

#[test]
fn compose_services_volumes_stages_and_configuration_resolve() {
    let root = repo();
    let compose = documents(&root.join("compose.yaml")).remove(0);
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<String> = services.keys().map(text).collect();
    let volumes = keys(&compose["volumes"]);
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    let stages: BTreeSet<String> = dockerfile
        .lines()
        .filter(|line| line.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words
                .iter()
                .position(|word| word.eq_ignore_ascii_case("as"))
                .map(|index| words[index + 1].to_owned())
        })
        .collect();
    for expected in [
        "generator",
        "validator",
        "trainer",
        "judge",
        "scheduler",
        "inference-worker",
        "inference-worker-gpu",
        "nats",
        "minio",
    ] {
        assert!(
            names.contains(expected),
            "compose has no {expected} service"
        );
    }
    let mut aml_services = 0;
    let mut metrics_services = BTreeSet::new();
    for (name, service) in services {
        let name = text(name);
        let dependencies = match &service["depends_on"] {
            Value::Sequence(list) => list.iter().map(text).collect(),
            other => keys(other),
        };
        for dependency in dependencies {
            assert!(
                names.contains(&dependency),
                "{name} depends on unknown {dependency}"
            );
        }
        assert!(
            service.get("image").is_some() || service.get("build").is_some(),
            "{name} has neither image nor build"
        );
        if let Some(target) = service["build"].get("target") {
            assert!(
                stages.contains(&text(target)),
                "{name}: no Dockerfile stage {target:?}"
            );
        }
        for mount in service["volumes"].as_sequence().into_iter().flatten() {
            let source = text(mount).split(':').next().unwrap_or_default().to_owned();
            if source.starts_with("./") {
                assert!(
                    root.join(&source).exists(),
                    "{name} mounts missing {source}"
                );
            } else if !source.starts_with('/') {
                assert!(
                    volumes.contains(&source),
                    "{name} uses undeclared volume {source}"
                );
            }
        }
        let environment: BTreeMap<String, String> = service["environment"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(key, value)| (text(key), interpolate(&text(value))))
            .collect();
        if environment.keys().any(|key| key.starts_with("AML_")) {
            aml_services += 1;
            assert_configuration(&environment, &format!("compose service {name}"));
        }
        let long_running = service.get("restart").is_some_and(|policy| policy != "no");
        if let Some(address) = environment
            .get("AML_TELEMETRY__METRICS_ADDR")
            .filter(|_| long_running)
        {
            metrics_services.insert(name.clone());
            let port = address.rsplit(':').next().unwrap_or_default();
            let check = serde_yaml::to_string(&service["healthcheck"]["test"]).unwrap();
            assert!(
                check.contains(&format!(":{port}/healthz")),
                "{name}'s health check probes /healthz on its metrics port {port}: {check}"
            );
        }
    }
    assert!(
        aml_services >= 7,
        "the services take their configuration from the environment"
    );
    let prometheus = documents(&root.join("deploy/prometheus.yml")).remove(0);
    let mut scraped = BTreeSet::new();
    for job in prometheus["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
    {
        for discovery in job["dns_sd_configs"].as_sequence().into_iter().flatten() {
            scraped.extend(
                discovery["names"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(text),
            );
        }
        for targets in job["static_configs"].as_sequence().into_iter().flatten() {
            scraped.extend(
                targets["targets"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(|target| {
                        text(target)
                            .split(':')
                            .next()
                            .unwrap_or_default()
                            .to_owned()
                    }),
            );
        }
    }
    for host in &scraped {
        assert!(
            names.contains(host),
            "Prometheus scrapes unknown service {host}"
        );
    }
    for service in &metrics_services {
        assert!(
            scraped.contains(service),
            "Prometheus does not scrape {service}"
        );
    }
    serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(root.join("deploy/grafana/dashboards/aml.json")).unwrap(),
    )
    .expect("the Grafana dashboard is JSON");

    let docker_compose = std::process::Command::new("docker")
        .args(["compose", "version"])
        .output();
    if docker_compose.is_ok_and(|output| output.status.success()) {
        let checked = std::process::Command::new("docker")
            .args(["compose", "-f"])
            .arg(root.join("compose.yaml"))
            .args(["config", "--quiet"])
            .output()
            .expect("docker compose config");
        assert!(
            checked.status.success(),
            "docker compose config: {}",
            String::from_utf8_lossy(&checked.stderr)
        );
    } else {
        eprintln!("docker compose is not installed here: `docker compose config` skipped");
    }
}

/// The objects a kustomization builds from (resources followed recursively), and its
/// inline patches.
fn kustomize(dir: &Path, objects: &mut Vec<Value>, patches: &mut Vec<Value>) {
    let kustomization = documents(&dir.join("kustomization.yaml")).remove(0);
    for resource in kustomization["resources"].as_sequence().expect("resources") {
        let path = dir.join(text(resource));
        if path.is_dir() {
            kustomize(&path, objects, patches);
        } else {
            objects.extend(documents(&path));
        }
    }
    for patch in kustomization["patches"].as_sequence().into_iter().flatten() {
        patches.push(patch.clone());
    }
    for generator in kustomization["secretGenerator"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let name = text(&generator["name"]);
        assert!(
            objects
                .iter()
                .any(|o| o["kind"] == "Secret" && text(&o["metadata"]["name"]) == name),
            "{}: secretGenerator replaces {name}, which no resource declares",
            dir.display()
        );
    }
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|object| object["kind"] == kind && text(&object["metadata"]["name"]) == name)
}

fn data_keys(object: &Value) -> BTreeSet<String> {
    let mut out = keys(&object["data"]);
    out.extend(keys(&object["stringData"]));
    out
}

/// Every pod template: (workload kind/name, template).
fn pod_templates(objects: &[Value]) -> Vec<(String, &Value)> {
    objects
        .iter()
        .filter(|object| matches!(object["kind"].as_str(), Some("Deployment" | "StatefulSet")))
        .map(|object| {
            let name = format!(
                "{}/{}",
                text(&object["kind"]),
                text(&object["metadata"]["name"])
            );
            (name, &object["spec"]["template"])
        })
        .collect()
}

fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_mapping()
        .into_iter()
        .flatten()
        .all(|(key, value)| labels.get(text(key).as_str()) == Some(value))
}

fn check_overlay(dir: &Path) {
    let (mut objects, mut patches) = (Vec::new(), Vec::new());
    kustomize(dir, &mut objects, &mut patches);
    let place = dir.display().to_string();
    for patch in &patches {
        let target = &patch["target"];
        let found = match target.get("labelSelector") {
            Some(selector) => {
                let (key, value) = text(selector)
                    .split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .expect("key=value");
                objects.iter().any(|object| {
                    object["kind"] == target["kind"]
                        && text(&object["metadata"]["labels"][key.as_str()]) == value
                })
            }
            None => named(&objects, &text(&target["kind"]), &text(&target["name"])).is_some(),
        };
        assert!(found, "{place}: a patch targets missing {target:?}");
        if target["kind"] == "ConfigMap" {
            let body: Value = serde_yaml::from_str(&text(&patch["patch"])).expect("patch YAML");
            let name = text(&target["name"]);
            let index = objects
                .iter()
                .position(|o| o["kind"] == "ConfigMap" && text(&o["metadata"]["name"]) == name)
                .expect("the patched ConfigMap");
            for (key, value) in body["data"].as_mapping().into_iter().flatten() {
                objects[index]["data"][key.clone()] = value.clone();
            }
        }
    }
    for config_map in objects.iter().filter(|o| o["kind"] == "ConfigMap") {
        let variables: BTreeMap<String, String> = config_map["data"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(key, value)| (text(key), text(value)))
            .filter(|(key, _)| key.starts_with("AML_") || key.starts_with("OTEL_"))
            .collect();
        assert_configuration(
            &variables,
            &format!(
                "{place}: ConfigMap {}",
                text(&config_map["metadata"]["name"])
            ),
        );
    }
    let templates = pod_templates(&objects);
    let claims: BTreeSet<String> = objects
        .iter()
        .filter(|o| o["kind"] == "PersistentVolumeClaim")
        .map(|o| text(&o["metadata"]["name"]))
        .collect();
    for object in objects
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Deployment" | "StatefulSet")))
    {
        let workload = text(&object["metadata"]["name"]);
        let template = &object["spec"]["template"];
        assert!(
            selects(
                &object["spec"]["selector"]["matchLabels"],
                &template["metadata"]["labels"]
            ),
            "{place}: {workload}'s selector does not match its pods"
        );
        let spec = &template["spec"];
        let templates_of_claims = keys(&Value::Mapping(
            object["spec"]["volumeClaimTemplates"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|claim| (claim["metadata"]["name"].clone(), Value::Null))
                .collect(),
        ));
        for volume in spec["volumes"].as_sequence().into_iter().flatten() {
            if let Some(secret) = volume["secret"].get("secretName") {
                assert!(
                    named(&objects, "Secret", &text(secret)).is_some(),
                    "{place}: {workload} mounts missing Secret {secret:?}"
                );
            }
            if let Some(config) = volume["configMap"].get("name") {
                assert!(
                    named(&objects, "ConfigMap", &text(config)).is_some(),
                    "{place}: {workload} mounts missing ConfigMap {config:?}"
                );
            }
            if let Some(claim) = volume["persistentVolumeClaim"].get("claimName") {
                assert!(
                    claims.contains(&text(claim)),
                    "{place}: {workload} claims missing PVC {claim:?}"
                );
            }
        }
        let declared_volumes: BTreeSet<String> = spec["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|volume| text(&volume["name"]))
            .chain(templates_of_claims)
            .collect();
        let containers = spec["containers"].as_sequence().into_iter().flatten();
        let init = spec["initContainers"].as_sequence().into_iter().flatten();
        for container in containers.chain(init) {
            let ports: BTreeSet<String> = container["ports"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|port| text(&port["name"]))
                .collect();
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                if let Some(port) = container[probe]["httpGet"].get("port")
                    && port.is_string()
                {
                    assert!(
                        ports.contains(&text(port)),
                        "{place}: {workload} probes unknown port {port:?}"
                    );
                }
            }
            for mount in container["volumeMounts"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                assert!(
                    declared_volumes.contains(&text(&mount["name"])),
                    "{place}: {workload} mounts undeclared volume {:?}",
                    mount["name"]
                );
            }
            for source in container["envFrom"].as_sequence().into_iter().flatten() {
                if let Some(name) = source["configMapRef"].get("name") {
                    assert!(
                        named(&objects, "ConfigMap", &text(name)).is_some(),
                        "{place}: {workload} envFrom missing ConfigMap {name:?}"
                    );
                }
                if let Some(name) = source["secretRef"].get("name") {
                    assert!(
                        named(&objects, "Secret", &text(name)).is_some(),
                        "{place}: {workload} envFrom missing Secret {name:?}"
                    );
                }
            }
            let mut environment = BTreeMap::new();
            for variable in container["env"].as_sequence().into_iter().flatten() {
                let name = text(&variable["name"]);
                environment.insert(name.clone(), text(&variable["value"]));
                for (kind, reference) in [
                    ("Secret", &variable["valueFrom"]["secretKeyRef"]),
                    ("ConfigMap", &variable["valueFrom"]["configMapKeyRef"]),
                ] {
                    if reference.is_null() || reference["optional"] == true {
                        continue;
                    }
                    let source =
                        named(&objects, kind, &text(&reference["name"])).unwrap_or_else(|| {
                            panic!(
                                "{place}: {workload} env {name} names missing {kind} {:?}",
                                reference["name"]
                            )
                        });
                    assert!(
                        data_keys(source).contains(&text(&reference["key"])),
                        "{place}: {workload} env {name}: {kind} {:?} has no key {:?}",
                        reference["name"],
                        reference["key"]
                    );
                }
            }
            environment.retain(|key, _| key.starts_with("AML_"));
            assert_configuration(&environment, &format!("{place}: {workload}"));
        }
    }
    for service in objects.iter().filter(|o| o["kind"] == "Service") {
        let name = text(&service["metadata"]["name"]);
        let selector = &service["spec"]["selector"];
        if selector.is_null() {
            continue;
        }
        let backing: Vec<&Value> = templates
            .iter()
            .filter(|(_, template)| selects(selector, &template["metadata"]["labels"]))
            .map(|(_, template)| *template)
            .collect();
        assert!(
            !backing.is_empty(),
            "{place}: Service {name} selects no pods"
        );
        for port in service["spec"]["ports"].as_sequence().into_iter().flatten() {
            let target = &port["targetPort"];
            if target.is_string() {
                let exposed = backing.iter().any(|template| {
                    serde_yaml::to_string(&template["spec"]["containers"])
                        .expect("YAML")
                        .contains(&format!("name: {}", text(target)))
                });
                assert!(
                    exposed,
                    "{place}: Service {name} targets unknown port {target:?}"
                );
            }
        }
    }
    for policy in objects.iter().filter(|o| o["kind"] == "NetworkPolicy") {
        let selector = &policy["spec"]["podSelector"]["matchLabels"];
        if selector.is_null() {
            continue;
        }
        assert!(
            templates
                .iter()
                .any(|(_, template)| selects(selector, &template["metadata"]["labels"])),
            "{place}: NetworkPolicy {} selects no pods",
            text(&policy["metadata"]["name"])
        );
    }
    let scaled: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "ScaledObject")
        .collect();
    assert!(
        !scaled.is_empty(),
        "{place}: the GPU workers are autoscaled"
    );
    for object in scaled {
        let target = text(&object["spec"]["scaleTargetRef"]["name"]);
        let deployment = named(&objects, "Deployment", &target)
            .unwrap_or_else(|| panic!("{place}: ScaledObject scales missing {target}"));
        assert!(
            serde_yaml::to_string(deployment)
                .expect("YAML")
                .contains("nvidia.com/gpu")
                || place.contains("dev"),
            "{place}: the scaled workers ask for a GPU"
        );
        assert_eq!(
            object["spec"]["minReplicaCount"], 0,
            "{place}: down to zero between batches"
        );
        for trigger in object["spec"]["triggers"].as_sequence().expect("triggers") {
            assert_eq!(trigger["type"], "nats-jetstream");
            assert_eq!(text(&trigger["metadata"]["stream"]), JOBS_STREAM);
            assert_eq!(
                text(&trigger["metadata"]["consumer"]),
                ConsumerSpec::inference_worker().durable
            );
        }
    }
}

#[test]
fn kubernetes_overlays_resolve_every_reference() {
    let k8s = repo().join("k8s");
    check_overlay(&k8s.join("base"));
    for overlay in std::fs::read_dir(k8s.join("overlays")).expect("overlays") {
        check_overlay(&overlay.expect("entry").path());
    }
}
