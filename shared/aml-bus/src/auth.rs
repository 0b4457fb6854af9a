//! NATS users and permissions: each bank may publish only its own alert subject and read
//! nothing but replies to itself; workers may run their consumers and publish events but not
//! alerts; the services user administers the streams.

use std::fmt::Write;

/// One NATS user and its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsUser {
    /// User name.
    pub name: String,
    /// Password (kept out of logs; write it to a 0600 file).
    pub password: String,
}

/// The users of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Users {
    /// The services' user (streams, consumers, every subject).
    pub services: NatsUser,
    /// The GPU workers' user.
    pub worker: NatsUser,
    /// One user per bank, named `bank-<bank>`.
    pub banks: Vec<(String, NatsUser)>,
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("\"{item}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A nats-server configuration block: one JetStream-enabled account `AML` with the users and
/// their permissions.
pub fn server_config(users: &Users) -> String {
    let mut config =
        String::from("jetstream {}\naccounts {\n  AML {\n    jetstream: enabled\n    users: [\n");
    let _ = writeln!(
        config,
        "      {{ user: \"{}\", password: \"{}\" }}",
        users.services.name, users.services.password
    );
    let _ = writeln!(
        config,
        "      {{ user: \"{}\", password: \"{}\", permissions: {{ publish: {{ allow: [{}], deny: [\"aml.alerts.>\"] }}, subscribe: {{ allow: [\"_INBOX.>\"] }} }} }}",
        users.worker.name,
        users.worker.password,
        quoted(&[
            "$JS.API.CONSUMER.INFO.JOBS.inference-worker",
            "$JS.API.CONSUMER.MSG.NEXT.JOBS.inference-worker",
            "$JS.API.STREAM.INFO.>",
            "$JS.ACK.JOBS.inference-worker.>",
            "aml.events.shard_completed.>",
            "aml.events.shard_progress.>",
            "aml.dlq.>"
        ])
    );
    for (bank, user) in &users.banks {
        let subject = format!("aml.alerts.{bank}");
        let _ = writeln!(
            config,
            "      {{ user: \"{}\", password: \"{}\", permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [\"_INBOX.>\"] }} }} }}",
            user.name,
            user.password,
            quoted(&[subject.as_str()])
        );
    }
    config.push_str("    ]\n  }\n}\n");
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::valid_bank;

    #[test]
    fn banks_get_only_their_subject() {
        let user = |name: &str| NatsUser {
            name: name.to_owned(),
            password: format!("{name}-secret"),
        };
        let config = server_config(&Users {
            services: user("services"),
            worker: user("worker"),
            banks: vec![("alpha".to_owned(), user("bank-alpha"))],
        });
        assert!(config.contains("user: \"bank-alpha\", password: \"bank-alpha-secret\", permissions: { publish: { allow: [\"aml.alerts.alpha\"] }"));
        assert!(config.contains("deny: [\"aml.alerts.>\"]"));
        assert!(
            valid_bank("alpha-2") && !valid_bank("Alpha") && !valid_bank("a.b") && !valid_bank("")
        );
    }
}
