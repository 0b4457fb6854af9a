//! The model runtime on libtorch: Hugging Face decoders (Llama 3.x, Mistral, Qwen2, Qwen3)
//! loaded from their own directory layout, LoRA adapters in the PEFT format, a shared-prefix
//! KV cache with cascade attention, label scoring from one forward pass, and generation.

pub mod attention;
pub mod config;
pub mod device;
pub mod error;
pub mod generate;
pub mod layers;
pub mod load;
pub mod lora;
pub mod merge;
pub mod model;
pub mod random;
pub mod rope;
pub mod safetensors_io;
pub mod scoring;
pub mod tiny;
pub mod tokenizer;
pub mod training;

pub use config::{Architecture, ModelConfig, TinySpec};
pub use device::{DeviceMemory, device_memory};
pub use error::{ModelError, Result};
pub use load::LoadOptions;
pub use lora::{Lora, LoraConfig, LoraInit};
pub use model::{CausalLm, KvCache, PrefixKv, Step};
pub use tokenizer::{ChatMessage, TextTokenizer};
