//! The batch cost arithmetic of the user's notes, as a tool: FLOPs per job with and without
//! the shared-prefix cache, GPU-hours at a utilisation, GPUs for a deadline, cost, and
//! whether the prefix KV fits the card.

use serde::Serialize;

/// A GPU model: dense bf16 peak, memory, bandwidth and a market price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gpu {
    /// Name on the command line.
    pub name: &'static str,
    /// Dense bf16 tensor throughput, TFLOP/s.
    pub peak_tflops: f64,
    /// Memory, GB.
    pub memory_gb: f64,
    /// Memory bandwidth, TB/s.
    pub bandwidth_tbs: f64,
    /// Typical marketplace price, USD per hour.
    pub price_per_hour: f64,
}

/// The cards the planner knows.
pub const GPUS: [Gpu; 5] = [
    Gpu {
        name: "a100-80gb",
        peak_tflops: 312.0,
        memory_gb: 80.0,
        bandwidth_tbs: 2.0,
        price_per_hour: 1.10,
    },
    Gpu {
        name: "h100",
        peak_tflops: 989.0,
        memory_gb: 80.0,
        bandwidth_tbs: 3.35,
        price_per_hour: 2.50,
    },
    Gpu {
        name: "h200",
        peak_tflops: 989.0,
        memory_gb: 141.0,
        bandwidth_tbs: 4.8,
        price_per_hour: 3.50,
    },
    Gpu {
        name: "rtx-3090",
        peak_tflops: 71.0,
        memory_gb: 24.0,
        bandwidth_tbs: 0.936,
        price_per_hour: 0.25,
    },
    Gpu {
        name: "rtx-4090",
        peak_tflops: 165.0,
        memory_gb: 24.0,
        bandwidth_tbs: 1.008,
        price_per_hour: 0.40,
    },
];

/// Finds a card by name (`a100`, `a100-80gb`, `h100`, `rtx-3090`, `3090`, ...).
pub fn gpu(name: &str) -> Option<Gpu> {
    let wanted = name.to_ascii_lowercase();
    GPUS.iter().copied().find(|gpu| {
        gpu.name == wanted || gpu.name.starts_with(&wanted) || gpu.name.ends_with(&wanted)
    })
}

/// The card a driver reports by name (`NVIDIA H200`, `NVIDIA A100-SXM4-80GB`,
/// `NVIDIA GeForce RTX 4090`), for MFU figures.
pub fn gpu_of_device(device_name: &str) -> Option<Gpu> {
    let name = device_name.to_ascii_lowercase();
    ["h200", "h100", "a100", "4090", "3090"]
        .iter()
        .find(|model| name.contains(*model))
        .and_then(|model| gpu(model))
}

/// The workload and the assumptions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// Alerts in the batch.
    pub jobs: f64,
    /// Tokens per alert (suffix).
    pub tokens_per_job: f64,
    /// Shared prefix tokens.
    pub prefix_tokens: f64,
    /// Model parameters, billions.
    pub params_billion: f64,
    /// Decoder layers.
    pub layers: f64,
    /// Query heads x head width.
    pub attention_width: f64,
    /// Key/value heads x head width.
    pub kv_width: f64,
    /// Bytes per weight (2 for bf16, 1 for FP8).
    pub weight_bytes: f64,
    /// Bytes per KV element.
    pub kv_bytes: f64,
    /// Sequences in flight per GPU.
    pub batch: f64,
    /// Share of peak reached.
    pub mfu: f64,
    /// Deadline, hours.
    pub deadline_hours: f64,
}

impl Default for Workload {
    /// The user's workload on Llama-3-8B's shape: 100k jobs x 200 tokens, 30k prefix, 40% MFU, 12 h.
    fn default() -> Self {
        Workload {
            jobs: 100_000.0,
            tokens_per_job: 200.0,
            prefix_tokens: 30_000.0,
            params_billion: 8.0,
            layers: 32.0,
            attention_width: 4096.0,
            kv_width: 1024.0,
            weight_bytes: 2.0,
            kv_bytes: 2.0,
            batch: 32.0,
            mfu: 0.4,
            deadline_hours: 12.0,
        }
    }
}

/// The plan for one strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// FLOPs per job.
    pub tflop_per_job: f64,
    /// GPU-hours for the batch.
    pub gpu_hours: f64,
    /// GPUs to meet the deadline.
    pub gpus_needed: f64,
    /// Cost at the price per hour.
    pub cost_usd: f64,
    /// Wall-clock hours with that many GPUs.
    pub wall_hours: f64,
    /// The prefix's keys and values, GB.
    pub prefix_kv_gb: f64,
    /// Memory the strategy needs per GPU, GB.
    pub memory_needed_gb: f64,
    /// Whether that fits the card.
    pub prefix_fits: bool,
}

/// Both strategies side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The card.
    pub gpu: Gpu,
    /// Price used.
    pub price_per_hour: f64,
    /// Prefix encoded once per GPU and shared by every job.
    pub cached: Plan,
    /// Every job re-encodes the prefix.
    pub uncached: Plan,
}

/// Memory left aside for activations and the runtime, GB.
const OVERHEAD_GB: f64 = 2.0;

impl Workload {
    fn flops_per_token(&self, context: f64) -> f64 {
        2.0 * self.params_billion * 1e9 + 4.0 * self.layers * self.attention_width * context
    }

    fn kv_bytes_per_token(&self) -> f64 {
        2.0 * self.layers * self.kv_width * self.kv_bytes
    }

    fn plan(
        &self,
        gpu: &Gpu,
        price: f64,
        flops_per_job: f64,
        extra_flops_per_gpu: f64,
        kv_gb: f64,
    ) -> Plan {
        let rate = gpu.peak_tflops * 1e12 * self.mfu;
        let job_hours = flops_per_job * self.jobs / rate / 3600.0;
        let gpus_needed = (job_hours / self.deadline_hours).ceil().max(1.0);
        let gpu_hours = job_hours + gpus_needed * extra_flops_per_gpu / rate / 3600.0;
        let weights_gb = self.params_billion * self.weight_bytes;
        let memory_needed_gb = weights_gb + kv_gb + OVERHEAD_GB;
        Plan {
            tflop_per_job: flops_per_job / 1e12,
            gpu_hours,
            gpus_needed,
            cost_usd: gpu_hours * price,
            wall_hours: gpu_hours / gpus_needed,
            prefix_kv_gb: self.prefix_tokens * self.kv_bytes_per_token() / 1e9,
            memory_needed_gb,
            prefix_fits: memory_needed_gb <= gpu.memory_gb,
        }
    }

    /// Plans the batch on `gpu` at `price` USD per GPU-hour.
    pub fn compare(&self, gpu: Gpu, price: f64) -> Comparison {
        let suffix_context = self.prefix_tokens + self.tokens_per_job / 2.0;
        let cached_job = self.tokens_per_job * self.flops_per_token(suffix_context);
        let prefix_encode = self.prefix_tokens * self.flops_per_token(self.prefix_tokens / 2.0);
        let kv_token = self.kv_bytes_per_token();
        let cached_kv = (self.prefix_tokens + self.batch * self.tokens_per_job) * kv_token / 1e9;
        let uncached_job = prefix_encode + cached_job;
        let uncached_kv = self.batch * (self.prefix_tokens + self.tokens_per_job) * kv_token / 1e9;
        Comparison {
            gpu,
            price_per_hour: price,
            cached: self.plan(&gpu, price, cached_job, prefix_encode, cached_kv),
            uncached: self.plan(&gpu, price, uncached_job, 0.0, uncached_kv),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a100_figures_equal_a_hand_calculation() {
        let plan = Workload::default().compare(gpu("a100").unwrap(), 1.10);
        // Per token at context 30,100: 16e9 + 4 * 32 * 4096 * 30100 = 31.78e9 FLOP; x 200 tokens.
        let per_job = 200.0 * (16e9 + 4.0 * 32.0 * 4096.0 * 30_100.0);
        assert!((plan.cached.tflop_per_job - per_job / 1e12).abs() < 1e-9);
        let rate = 312e12 * 0.4;
        let job_hours = per_job * 100_000.0 / rate / 3600.0;
        let prefix = 30_000.0 * (16e9 + 4.0 * 32.0 * 4096.0 * 15_000.0);
        assert!((plan.cached.gpu_hours - (job_hours + prefix / rate / 3600.0)).abs() < 1e-9);
        assert_eq!(plan.cached.gpus_needed, 1.0);
        assert!((plan.cached.cost_usd - plan.cached.gpu_hours * 1.10).abs() < 1e-9);
        // Prefix KV: 30,000 tokens x 2 (K, V) x 32 layers x 1024 x 2 bytes = 3.93 GB.
        assert!((plan.cached.prefix_kv_gb - 3.932_16).abs() < 1e-6);
        assert!(plan.cached.prefix_fits);
        let uncached_hours = (prefix + per_job) * 100_000.0 / rate / 3600.0;
        assert!((plan.uncached.gpu_hours - uncached_hours).abs() < 1e-6);
        assert!(plan.uncached.gpu_hours > 100.0 && plan.cached.gpu_hours < 2.0);
        assert_eq!(plan.uncached.gpus_needed, (uncached_hours / 12.0).ceil());
    }

    #[test]
    fn rtx_3090_figures_and_memory() {
        let plan = Workload::default().compare(gpu("3090").unwrap(), 0.25);
        assert_eq!(gpu_of_device("NVIDIA H200").unwrap().name, "h200");
        assert_eq!(
            gpu_of_device("NVIDIA A100-SXM4-80GB").unwrap().name,
            "a100-80gb"
        );
        assert_eq!(
            gpu_of_device("NVIDIA GeForce RTX 4090").unwrap().name,
            "rtx-4090"
        );
        assert!(gpu_of_device("Tesla T4").is_none());
        let per_job: f64 = 200.0 * (16e9 + 4.0 * 32.0 * 4096.0 * 30_100.0);
        let rate: f64 = 71e12 * 0.4;
        let job_hours: f64 = per_job * 100_000.0 / rate / 3600.0;
        assert_eq!(plan.cached.gpus_needed, (job_hours / 12.0).ceil());
        // Cached: 16 GB weights + (30,000 + 32 x 200) x 131,072 B + 2 GB = 22.77 GB <= 24.
        assert!(
            (plan.cached.memory_needed_gb - (16.0 + 36_400.0 * 131_072.0 / 1e9 + 2.0)).abs() < 1e-9
        );
        assert!(plan.cached.prefix_fits);
        // Uncached: 32 sequences each with their own 30,200-token KV do not fit.
        assert!(!plan.uncached.prefix_fits);
    }
}
