//! Turning a device and dtype choice into load options, and what a device has free (for the
//! trainer's check that a run fits before its first step).

use aml_core::{DeviceChoice, DtypeChoice};
use tch::{Device, Kind};

use crate::error::{ModelError, Result};
use crate::load::LoadOptions;

impl LoadOptions {
    /// The options a choice stands for: `auto` is the first CUDA device in bf16 when one is
    /// visible, else the CPU in f32; a CUDA device that is not there is an error.
    pub fn resolve(device: DeviceChoice, dtype: DtypeChoice, fp8_weights: bool) -> Result<Self> {
        let visible = if tch::Cuda::is_available() {
            tch::Cuda::device_count().max(0) as usize
        } else {
            0
        };
        let device = match device {
            DeviceChoice::Auto if visible > 0 => Device::Cuda(0),
            DeviceChoice::Auto | DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda(index) if index < visible => Device::Cuda(index),
            DeviceChoice::Cuda(index) => {
                return Err(ModelError::Device(format!(
                    "device cuda:{index} asked for, but libtorch sees {visible} CUDA device(s){}",
                    if visible == 0 {
                        " (no driver, no GPU, or a CPU-only libtorch)"
                    } else {
                        ""
                    }
                )));
            }
        };
        let kind = match (dtype, device) {
            (DtypeChoice::F32, _) | (DtypeChoice::Auto, Device::Cpu) => Kind::Float,
            (DtypeChoice::Bf16, _) | (DtypeChoice::Auto, _) => Kind::BFloat16,
        };
        Ok(LoadOptions {
            device,
            kind,
            fp8_weights,
        })
    }

    /// `cuda:0, bf16, FP8 base weights`: what the options say, for start-up lines.
    pub fn describe(&self) -> String {
        let device = match self.device {
            Device::Cuda(index) => format!("cuda:{index}"),
            _ => "cpu".to_owned(),
        };
        let kind = match self.kind {
            Kind::BFloat16 => "bf16",
            Kind::Half => "f16",
            _ => "f32",
        };
        if self.fp8_weights {
            format!("{device}, {kind}, FP8 e4m3 base weights")
        } else {
            format!("{device}, {kind}")
        }
    }
}

/// The memory of a device as its driver (or the kernel, for the CPU) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMemory {
    /// The device's name, e.g. `NVIDIA H200` or `cpu`.
    pub name: String,
    /// Bytes in all.
    pub total_bytes: u64,
    /// Bytes free now.
    pub free_bytes: u64,
}

/// The memory of `device`: `nvidia-smi` for a CUDA device (the index mapped through
/// `CUDA_VISIBLE_DEVICES`), `/proc/meminfo` (`MemAvailable`) for the CPU; `None` when that
/// source cannot be read.
pub fn device_memory(device: Device) -> Option<DeviceMemory> {
    match device {
        Device::Cuda(index) => cuda_memory(index),
        _ => cpu_memory(),
    }
}

fn cuda_memory(index: usize) -> Option<DeviceMemory> {
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let selector = visible
        .as_deref()
        .and_then(|list| list.split(',').nth(index).map(str::trim).map(str::to_owned))
        .unwrap_or_else(|| index.to_string());
    let output = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,memory.total,memory.free",
            "--format=csv,noheader,nounits",
            "-i",
            &selector,
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    parse_nvidia_smi(&String::from_utf8_lossy(&output.stdout))
}

/// Parses one `name, total MiB, free MiB` line of `nvidia-smi --query-gpu`.
fn parse_nvidia_smi(text: &str) -> Option<DeviceMemory> {
    let line = text.lines().next()?;
    let mut fields = line.rsplitn(3, ',').map(str::trim);
    let free: u64 = fields.next()?.parse().ok()?;
    let total: u64 = fields.next()?.parse().ok()?;
    let name = fields.next()?.to_owned();
    Some(DeviceMemory {
        name,
        total_bytes: total * 1024 * 1024,
        free_bytes: free * 1024 * 1024,
    })
}

fn cpu_memory() -> Option<DeviceMemory> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some(DeviceMemory {
        name: "cpu".to_owned(),
        total_bytes: field("MemTotal:")?,
        free_bytes: field("MemAvailable:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_the_cpu_in_f32_without_cuda_and_a_missing_gpu_is_an_error() {
        if tch::Cuda::is_available() {
            return;
        }
        let auto = LoadOptions::resolve(DeviceChoice::Auto, DtypeChoice::Auto, false).unwrap();
        assert_eq!(auto, LoadOptions::cpu_f32());
        let bf16 = LoadOptions::resolve(DeviceChoice::Cpu, DtypeChoice::Bf16, true).unwrap();
        assert_eq!(bf16.kind, Kind::BFloat16);
        assert_eq!(bf16.describe(), "cpu, bf16, FP8 e4m3 base weights");
        let error = LoadOptions::resolve(DeviceChoice::Cuda(1), DtypeChoice::Auto, false)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("device cuda:1 asked for, but libtorch sees 0 CUDA device(s)"),
            "{error}"
        );
    }

    #[test]
    fn reads_nvidia_smi_lines_and_the_kernels_memory() {
        let parsed = parse_nvidia_smi("NVIDIA H200, 143771, 140012\n").unwrap();
        assert_eq!(parsed.name, "NVIDIA H200");
        assert_eq!(parsed.total_bytes, 143_771 * 1024 * 1024);
        assert_eq!(parsed.free_bytes, 140_012 * 1024 * 1024);
        assert_eq!(parse_nvidia_smi("garbage"), None);
        let cpu = device_memory(Device::Cpu).expect("/proc/meminfo on Linux");
        assert!(cpu.free_bytes > 0 && cpu.free_bytes <= cpu.total_bytes);
    }
}
