//! Where a model runs and in which precision, as a user asks for it (`--device`, `--dtype`,
//! `scoring.device`, `scoring.dtype`). The model runtime turns a choice into load options.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A device as asked for: `auto`, `cpu`, `cuda` (the first CUDA device) or `cuda:N`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first CUDA device when one is visible, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The CUDA device with this index.
    Cuda(usize),
}

/// A compute dtype as asked for: `auto`, `f32` or `bf16`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DtypeChoice {
    /// bf16 on a CUDA device, f32 on the CPU.
    #[default]
    Auto,
    /// float32.
    F32,
    /// bfloat16.
    Bf16,
}

/// A device or dtype name that is not one of the accepted spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {what}: expected {expected}")]
pub struct ChoiceError {
    /// What was given.
    pub value: String,
    /// `device` or `dtype`.
    pub what: &'static str,
    /// The accepted spellings.
    pub expected: &'static str,
}

impl FromStr for DeviceChoice {
    type Err = ChoiceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ChoiceError {
            value: text.to_owned(),
            what: "device",
            expected: "auto, cpu, cuda or cuda:N",
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|index| index.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(error),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => formatter.write_str("auto"),
            DeviceChoice::Cpu => formatter.write_str("cpu"),
            DeviceChoice::Cuda(index) => write!(formatter, "cuda:{index}"),
        }
    }
}

impl FromStr for DtypeChoice {
    type Err = ChoiceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DtypeChoice::Auto),
            "f32" | "float32" | "fp32" => Ok(DtypeChoice::F32),
            "bf16" | "bfloat16" => Ok(DtypeChoice::Bf16),
            _ => Err(ChoiceError {
                value: text.to_owned(),
                what: "dtype",
                expected: "auto, f32 or bf16",
            }),
        }
    }
}

impl fmt::Display for DtypeChoice {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            DtypeChoice::Auto => "auto",
            DtypeChoice::F32 => "f32",
            DtypeChoice::Bf16 => "bf16",
        })
    }
}

/// Serialised as their command-line spelling, so configuration files read like the flags.
macro_rules! serde_as_text {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_text!(DeviceChoice);
serde_as_text!(DtypeChoice);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_bad_ones_name_what_is_expected() {
        for text in ["auto", "cpu", "cuda:0", "cuda:3"] {
            assert_eq!(text.parse::<DeviceChoice>().unwrap().to_string(), text);
        }
        assert_eq!("cuda".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("BF16".parse::<DtypeChoice>(), Ok(DtypeChoice::Bf16));
        assert_eq!("float32".parse::<DtypeChoice>(), Ok(DtypeChoice::F32));
        assert_eq!(
            "gpu".parse::<DeviceChoice>().unwrap_err().to_string(),
            "`gpu` is not a device: expected auto, cpu, cuda or cuda:N"
        );
        assert!("fp16".parse::<DtypeChoice>().is_err());
        let json = serde_json::to_string(&DeviceChoice::Cuda(1)).unwrap();
        assert_eq!(json, "\"cuda:1\"");
        assert_eq!(
            serde_json::from_str::<DeviceChoice>(&json).unwrap(),
            DeviceChoice::Cuda(1)
        );
    }
}
