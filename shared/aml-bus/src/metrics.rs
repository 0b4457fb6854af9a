//! A runner's counters and their Prometheus text exposition.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::RunnerStats;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) acked: AtomicU64,
    pub(crate) nacked: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) handled: AtomicU64,
    pub(crate) handler_micros: AtomicU64,
    /// Handler runs per latency bucket of [`LATENCY_BUCKETS`] (not cumulative; the last
    /// slot counts runs above every bound).
    pub(crate) latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
}

/// Upper bounds, in seconds, of the handler latency histogram.
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0,
];

impl Counters {
    pub(crate) fn observe(&self, elapsed: std::time::Duration) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        self.handler_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
    }
}

impl Counters {
    pub(crate) fn snapshot(&self) -> RunnerStats {
        RunnerStats {
            acked: self.acked.load(Ordering::Relaxed),
            nacked: self.nacked.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
        }
    }
}

/// A runner's counters in the Prometheus text format, for a `/metrics` endpoint.
#[derive(Debug, Clone)]
pub struct RunnerMetrics {
    pub(crate) counters: Arc<Counters>,
    pub(crate) consumer: String,
}

type CounterField = fn(&Counters) -> &AtomicU64;

const COUNTERS: [(&str, &str, CounterField); 5] = [
    ("aml_bus_acked_total", "Messages handled and acked.", |c| {
        &c.acked
    }),
    (
        "aml_bus_nacked_total",
        "Transient failures nak'ed for redelivery.",
        |c| &c.nacked,
    ),
    (
        "aml_bus_dead_lettered_total",
        "Messages sent to the DLQ.",
        |c| &c.dead_lettered,
    ),
    (
        "aml_bus_released_total",
        "Fetched messages handed back at shutdown.",
        |c| &c.released,
    ),
    (
        "aml_bus_handled_total",
        "Handler runs (any outcome).",
        |c| &c.handled,
    ),
];

impl RunnerMetrics {
    /// The counters as Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        Self::render_all(std::slice::from_ref(self))
    }

    /// Several runners' counters in one exposition, each metric family declared once.
    pub fn render_all(runners: &[RunnerMetrics]) -> String {
        let value = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut text = String::new();
        for (name, help, field) in COUNTERS {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for runner in runners {
                let total = value(field(&runner.counters));
                text.push_str(&format!(
                    "{name}{{consumer=\"{}\"}} {total}\n",
                    runner.consumer
                ));
            }
        }
        let seconds = |runner: &RunnerMetrics| value(&runner.counters.handler_micros) as f64 / 1e6;
        let name = "aml_bus_handler_seconds_total";
        text.push_str(&format!(
            "# HELP {name} Time spent in handlers.\n# TYPE {name} counter\n"
        ));
        for runner in runners {
            text.push_str(&format!(
                "{name}{{consumer=\"{}\"}} {}\n",
                runner.consumer,
                seconds(runner)
            ));
        }
        let name = "aml_bus_handler_duration_seconds";
        text.push_str(&format!(
            "# HELP {name} Handler latency.\n# TYPE {name} histogram\n"
        ));
        for runner in runners {
            let consumer = &runner.consumer;
            let latency = &runner.counters.latency;
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(latency) {
                cumulative += value(count);
                text.push_str(&format!(
                    "{name}_bucket{{consumer=\"{consumer}\",le=\"{bound}\"}} {cumulative}\n"
                ));
            }
            cumulative += value(&latency[LATENCY_BUCKETS.len()]);
            text.push_str(&format!(
                "{name}_bucket{{consumer=\"{consumer}\",le=\"+Inf\"}} {cumulative}\n{name}_sum{{consumer=\"{consumer}\"}} {}\n{name}_count{{consumer=\"{consumer}\"}} {cumulative}\n",
                seconds(runner)
            ));
        }
        text
    }
}
