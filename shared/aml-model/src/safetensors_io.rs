//! Reading and writing safetensors files: one file or shards with their index.
//!
//! Tensors are read one at a time straight from the file at their offset, so loading never
//! holds more than the model plus one tensor in host memory (an 8B model loads without twice
//! its size in RAM). Headers are checked: offsets inside the file, sizes matching shapes.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::{Value, json};
use tch::{Device, Kind, Tensor};

use crate::error::{ModelError, Result, read_json, write_file};

/// Largest header accepted (100 MB, as the safetensors crate).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Where one tensor lives.
#[derive(Debug, Clone)]
struct Entry {
    file: PathBuf,
    dtype: String,
    shape: Vec<i64>,
    offset: u64,
    len: u64,
}

/// The tensors of a model directory, by name, read on demand.
#[derive(Debug, Clone)]
pub struct WeightFiles {
    source: PathBuf,
    entries: HashMap<String, Entry>,
}

fn dtype_size(dtype: &str) -> Option<u64> {
    match dtype {
        "F64" | "I64" | "U64" => Some(8),
        "F32" | "I32" | "U32" => Some(4),
        "F16" | "BF16" | "I16" | "U16" => Some(2),
        "F8_E4M3" | "F8_E5M2" | "I8" | "U8" | "BOOL" => Some(1),
        _ => None,
    }
}

fn kind_of(dtype: &str) -> Option<Kind> {
    match dtype {
        "F64" => Some(Kind::Double),
        "F32" => Some(Kind::Float),
        "F16" => Some(Kind::Half),
        "BF16" => Some(Kind::BFloat16),
        "F8_E4M3" => Some(Kind::Float8e4m3fn),
        "F8_E5M2" => Some(Kind::Float8e5m2),
        "I64" => Some(Kind::Int64),
        "I32" => Some(Kind::Int),
        "I8" => Some(Kind::Int8),
        "U8" => Some(Kind::Uint8),
        "BOOL" => Some(Kind::Bool),
        _ => None,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::CorruptHeader {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_header(path: &Path) -> Result<Vec<(String, Entry)>> {
    let mut file = File::open(path).map_err(io(path))?;
    let file_len = file.metadata().map_err(io(path))?.len();
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|_| corrupt(path, "file shorter than the 8-byte header length"))?;
    let header_len = u64::from_le_bytes(length);
    if header_len > MAX_HEADER_BYTES || header_len + 8 > file_len {
        return Err(corrupt(
            path,
            format!("header length {header_len} does not fit a {file_len}-byte file"),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io(path))?;
    let header: BTreeMap<String, Value> =
        serde_json::from_slice(&header).map_err(|error| corrupt(path, error.to_string()))?;
    let data_start = 8 + header_len;
    let data_len = file_len - data_start;
    let mut entries = Vec::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| corrupt(path, format!("tensor `{name}` has no dtype")))?
            .to_owned();
        let shape: Vec<i64> = info
            .get("shape")
            .and_then(Value::as_array)
            .map(|dims| dims.iter().filter_map(Value::as_i64).collect())
            .ok_or_else(|| corrupt(path, format!("tensor `{name}` has no shape")))?;
        let offsets: Vec<u64> = info
            .get("data_offsets")
            .and_then(Value::as_array)
            .map(|offsets| offsets.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let [start, end] = offsets[..] else {
            return Err(corrupt(
                path,
                format!("tensor `{name}` has no data_offsets"),
            ));
        };
        if end < start || end > data_len {
            return Err(corrupt(
                path,
                format!("tensor `{name}` spans bytes {start}..{end} of {data_len}"),
            ));
        }
        let Some(element) = dtype_size(&dtype) else {
            return Err(ModelError::UnsupportedDtype {
                path: path.to_owned(),
                name,
                dtype,
            });
        };
        let elements: i64 = shape.iter().product();
        if elements < 0 || elements as u64 * element != end - start {
            return Err(corrupt(
                path,
                format!(
                    "tensor `{name}` of shape {shape:?} and dtype {dtype} cannot take {} bytes",
                    end - start
                ),
            ));
        }
        entries.push((
            name,
            Entry {
                file: path.to_owned(),
                dtype,
                shape,
                offset: data_start + start,
                len: end - start,
            },
        ));
    }
    Ok(entries)
}

impl WeightFiles {
    /// Indexes `model.safetensors.index.json` and its shards, or `model.safetensors`.
    pub fn open(dir: &Path) -> Result<Self> {
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let mut entries = HashMap::new();
        if index_path.exists() {
            let index = read_json(&index_path, "the shard index")?;
            let weight_map = index
                .get("weight_map")
                .and_then(Value::as_object)
                .ok_or_else(|| ModelError::InvalidJson {
                    path: index_path.clone(),
                    reason: "missing `weight_map`".to_owned(),
                })?;
            let mut shards: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (name, file) in weight_map {
                let file = file.as_str().ok_or_else(|| ModelError::InvalidJson {
                    path: index_path.clone(),
                    reason: format!("weight_map entry `{name}` is not a file name"),
                })?;
                shards
                    .entry(file.to_owned())
                    .or_default()
                    .push(name.clone());
            }
            for (file, names) in shards {
                let shard = dir.join(&file);
                if !shard.exists() {
                    return Err(ModelError::MissingFile {
                        path: shard,
                        what: "a shard named in model.safetensors.index.json",
                    });
                }
                let mut found: HashMap<String, Entry> = read_header(&shard)?.into_iter().collect();
                for name in names {
                    let entry = found
                        .remove(&name)
                        .ok_or_else(|| ModelError::MissingTensor {
                            path: shard.clone(),
                            name: name.clone(),
                        })?;
                    entries.insert(name, entry);
                }
            }
            return Ok(WeightFiles {
                source: index_path,
                entries,
            });
        }
        if !single.exists() {
            return Err(ModelError::MissingFile {
                path: single,
                what: "the weights (model.safetensors or model.safetensors.index.json)",
            });
        }
        entries.extend(read_header(&single)?);
        Ok(WeightFiles {
            source: single,
            entries,
        })
    }

    /// Indexes one safetensors file.
    pub fn open_file(path: &Path) -> Result<Self> {
        Ok(WeightFiles {
            source: path.to_owned(),
            entries: read_header(path)?.into_iter().collect(),
        })
    }

    /// Whether a tensor is present.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The names of all tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The file (or index) the tensors come from, for messages.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Reads a tensor, checks its shape when `expected` is given, and converts it to `kind` on `device`.
    pub fn load(
        &self,
        name: &str,
        expected: Option<&[i64]>,
        kind: Kind,
        device: Device,
    ) -> Result<Tensor> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.source.clone(),
                name: name.to_owned(),
            })?;
        if let Some(expected) = expected
            && expected != entry.shape.as_slice()
        {
            return Err(ModelError::Shape {
                path: entry.file.clone(),
                name: name.to_owned(),
                expected: expected.to_vec(),
                found: entry.shape.clone(),
            });
        }
        let source_kind = kind_of(&entry.dtype).ok_or_else(|| ModelError::UnsupportedDtype {
            path: entry.file.clone(),
            name: name.to_owned(),
            dtype: entry.dtype.clone(),
        })?;
        let mut file = File::open(&entry.file).map_err(io(&entry.file))?;
        file.seek(SeekFrom::Start(entry.offset))
            .map_err(io(&entry.file))?;
        let mut bytes = vec![0u8; entry.len as usize];
        file.read_exact(&mut bytes).map_err(io(&entry.file))?;
        let tensor = Tensor::f_from_data_size(&bytes, &entry.shape, source_kind)?;
        drop(bytes);
        Ok(tensor.f_to_device(device)?.f_to_kind(kind)?)
    }
}

fn safetensors_dtype(kind: Kind) -> Result<Dtype> {
    match kind {
        Kind::Float => Ok(Dtype::F32),
        Kind::BFloat16 => Ok(Dtype::BF16),
        Kind::Half => Ok(Dtype::F16),
        Kind::Float8e4m3fn => Ok(Dtype::F8_E4M3),
        Kind::Int64 => Ok(Dtype::I64),
        other => Err(ModelError::Input(format!(
            "cannot save tensors of kind {other:?}"
        ))),
    }
}

fn tensor_bytes(tensor: &Tensor) -> Result<(Dtype, Vec<usize>, Vec<u8>)> {
    let tensor = tensor.f_to_device(Device::Cpu)?.f_contiguous()?;
    let dtype = safetensors_dtype(tensor.kind())?;
    let shape: Vec<usize> = tensor.size().iter().map(|&dim| dim as usize).collect();
    let bytes_len = tensor.numel() * tensor.kind().elt_size_in_bytes();
    let mut bytes = vec![0u8; bytes_len];
    tensor.f_copy_data_u8(&mut bytes, tensor.numel())?;
    Ok((dtype, shape, bytes))
}

/// Writes tensors as one safetensors file.
pub fn save_file(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        owned.push((name.clone(), tensor_bytes(tensor)?));
    }
    let mut views = Vec::with_capacity(owned.len());
    for (name, (dtype, shape, bytes)) in &owned {
        let view = TensorView::new(*dtype, shape.clone(), bytes)
            .map_err(|error| corrupt(path, error.to_string()))?;
        views.push((name.clone(), view));
    }
    safetensors::serialize_to_file(views, metadata, path)
        .map_err(|error| corrupt(path, error.to_string()))
}

/// A tensor [`save_sharded_with`] will write: its name and size, known before its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTensor {
    /// The tensor's name in the files.
    pub name: String,
    /// Its size in bytes as saved.
    pub bytes: u64,
}

/// Writes tensors as `model-0000i-of-0000n.safetensors` shards of at most `max_shard_bytes`
/// plus `model.safetensors.index.json`, the layout of `save_pretrained`. Tensors are made one
/// at a time by `produce(position in plan)`: only one shard's tensors are held in host memory
/// at once (a merged 8B model is written without holding its 16 GB).
pub fn save_sharded_with(
    dir: &Path,
    plan: &[PlannedTensor],
    max_shard_bytes: u64,
    mut produce: impl FnMut(usize) -> Result<Tensor>,
) -> Result<()> {
    let mut shards: Vec<Vec<usize>> = vec![Vec::new()];
    let mut shard_bytes = 0u64;
    let mut total_bytes = 0u64;
    for (position, planned) in plan.iter().enumerate() {
        let current_is_empty = shards.last().is_none_or(Vec::is_empty);
        if shard_bytes + planned.bytes > max_shard_bytes && !current_is_empty {
            shards.push(Vec::new());
            shard_bytes = 0;
        }
        if let Some(shard) = shards.last_mut() {
            shard.push(position);
        }
        shard_bytes += planned.bytes;
        total_bytes += planned.bytes;
    }
    let count = shards.len();
    let mut weight_map = serde_json::Map::new();
    let metadata: HashMap<String, String> = [("format".to_owned(), "pt".to_owned())].into();
    for (number, positions) in shards.iter().enumerate() {
        let file_name = format!("model-{:05}-of-{count:05}.safetensors", number + 1);
        let mut shard = Vec::with_capacity(positions.len());
        for &position in positions {
            let tensor = produce(position)?.f_to_device(Device::Cpu)?;
            weight_map.insert(plan[position].name.clone(), json!(file_name));
            shard.push((plan[position].name.clone(), tensor));
        }
        save_file(&dir.join(&file_name), &shard, Some(metadata.clone()))?;
    }
    let index = json!({"metadata": {"total_size": total_bytes}, "weight_map": weight_map});
    let text = serde_json::to_string_pretty(&index)
        .map_err(|error| ModelError::Input(error.to_string()))?;
    write_file(&dir.join("model.safetensors.index.json"), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save_sharded(dir: &Path, tensors: &[(String, Tensor)], max_shard_bytes: u64) -> Result<()> {
        let plan: Vec<PlannedTensor> = tensors
            .iter()
            .map(|(name, tensor)| PlannedTensor {
                name: name.clone(),
                bytes: (tensor.numel() * tensor.kind().elt_size_in_bytes()) as u64,
            })
            .collect();
        save_sharded_with(dir, &plan, max_shard_bytes, |position| {
            Ok(tensors[position].1.shallow_clone())
        })
    }

    #[test]
    fn sharded_round_trip_keeps_values_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let tensors: Vec<(String, Tensor)> = (0..5)
            .map(|i| {
                (
                    format!("layer.{i}.weight"),
                    Tensor::randn([8, 16], (Kind::Float, Device::Cpu)),
                )
            })
            .collect();
        save_sharded(dir.path(), &tensors, 1_100).unwrap();
        assert!(dir.path().join("model-00003-of-00003.safetensors").exists());
        let files = WeightFiles::open(dir.path()).unwrap();
        for (name, tensor) in &tensors {
            let loaded = files
                .load(name, Some(&[8, 16]), Kind::Float, Device::Cpu)
                .unwrap();
            assert!(loaded.equal(tensor));
        }
        let error = files
            .load("layer.0.weight", Some(&[16, 8]), Kind::Float, Device::Cpu)
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("has shape [8, 16], the configuration implies [16, 8]"),
            "{error}"
        );
    }

    #[test]
    fn missing_shard_and_corrupt_header_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let tensors = vec![
            (
                "a".to_owned(),
                Tensor::ones([4], (Kind::Float, Device::Cpu)),
            ),
            (
                "b".to_owned(),
                Tensor::ones([4], (Kind::Float, Device::Cpu)),
            ),
        ];
        save_sharded(dir.path(), &tensors, 16).unwrap();
        std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
        let error = WeightFiles::open(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("model-00002-of-00002.safetensors: missing"),
            "{error}"
        );

        let single = tempfile::tempdir().unwrap();
        let path = single.path().join("model.safetensors");
        std::fs::write(&path, [200u8, 0, 0, 0, 0, 0, 0, 0, b'{']).unwrap();
        let error = WeightFiles::open(single.path()).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{}: corrupt safetensors header", path.display())),
            "{error}"
        );
    }
}
