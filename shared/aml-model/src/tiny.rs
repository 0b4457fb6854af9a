//! `init-tiny`: a small random model in a valid Hugging Face directory, with a byte-level BPE
//! tokenizer trained on the fly and a Llama-3-style chat template. Tests and the demo build
//! their models this way; nothing is downloaded.

use std::collections::HashSet;
use std::path::Path;

use serde_json::json;
use tch::{Device, Tensor};
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, TokenizerBuilder};

use crate::config::{ModelConfig, TinySpec};
use crate::error::{ModelError, Result, write_file};
use crate::load::tensor_shapes;
use crate::merge::kind_of_dtype_name;
use crate::random::normal_tensor;
use crate::safetensors_io::{PlannedTensor, save_file, save_sharded_with};
use aml_core::rng::SeededRng;

/// The special tokens of the tiny tokenizer, in id order.
pub const SPECIAL_TOKENS: [&str; 5] = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
];

/// A Llama-3-style chat template.
pub const CHAT_TEMPLATE: &str = "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

/// Text the tiny tokenizer is trained on: the screening vocabulary the model will see.
const CORPUS: &str = "Decide whether the customer is the same entity as the watchlist entry. \
Answer with one word, MATCH, NO_MATCH or EDGE (borderline, needs an analyst), then give the reasons, \
citing the fields that decide it.\n\
Customer (person):\n  name: Yevgeny Volkov\n  date of birth: 1971-03-02\n  nationality: RU\n  country: Cyprus\n\
  identifiers: passport 7512 334455 (RU)\n  address: PO Box 1142, Limassol\n  relationships: UBO of Volkov Trading Ltd\n\
Watchlist entry (person, OFAC SDN, programme UKRAINE-EO13662):\n  name: Evgenii Volkov\n  aliases: Jewgeni Wolkow; Evgeniy Volkov\n\
Customer (organisation):\n  name: Golden Crescent Trading LLC\n  country: United Arab Emirates\n  identifiers: lei 5493001KJTIIGC8Y1R12\n\
Watchlist entry (organisation, EU Consolidated):\n  name: Golden Crescent General Trading FZE\n\
Context: wire transfers of USD 9,900 structured below the reporting threshold; correspondent banking; crypto exchange; MSB\n\
MATCH — alias + DOB + LEI link confirm identity\nNO_MATCH — different date of birth and nationality\n\
EDGE — partial DOB and transliterated name, needs an analyst\n\
The date of birth agrees. The nationality conflicts. The passport number matches. The ownership chain links the subsidiary \
to the parent and the ultimate beneficial owner. Transliteration from Cyrillic, Arabic and Chinese pinyin; Soundex and \
Metaphone neighbours; OCR noise; maiden name; diacritics; initials; GmbH, S.A., Ltd, LLC, OOO, JSC.\n\
Mohammed Al-Rashid, Muhammad Alrashid, Zhang Wei, Chang Wei, Olga Ivanova, Olha Ivanova, Maria Garcia Lopez.\n";

/// The unknown token of the SentencePiece-style tokenizer (characters the corpus lacks).
const UNKNOWN: &str = "<unk>";

fn train_tokenizer(vocab_size: usize, sentencepiece: bool) -> Result<tokenizers::Tokenizer> {
    let tokenizer_error = |error: tokenizers::Error| ModelError::Tokenizer {
        path: "tokenizer.json".into(),
        reason: error.to_string(),
    };
    let mut special: Vec<AddedToken> = SPECIAL_TOKENS
        .iter()
        .map(|token| AddedToken::from(*token, true))
        .collect();
    let (model, alphabet, pre_tokenizer, decoder) = if sentencepiece {
        special.push(AddedToken::from(UNKNOWN, true));
        let metaspace = Metaspace::new('\u{2581}', PrependScheme::First, true);
        let mut alphabet: HashSet<char> = CORPUS.chars().filter(|c| !c.is_whitespace()).collect();
        alphabet.insert('\u{2581}');
        alphabet.insert('\n');
        let model = BPE::builder()
            .unk_token(UNKNOWN.to_owned())
            .build()
            .map_err(tokenizer_error)?;
        (
            model,
            alphabet,
            PreTokenizerWrapper::Metaspace(metaspace.clone()),
            DecoderWrapper::Metaspace(metaspace),
        )
    } else {
        (
            BPE::default(),
            ByteLevel::alphabet().into_iter().collect(),
            PreTokenizerWrapper::ByteLevel(ByteLevel::default().add_prefix_space(false)),
            DecoderWrapper::ByteLevel(ByteLevel::default()),
        )
    };
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(1)
        .show_progress(false)
        .initial_alphabet(alphabet)
        .special_tokens(special)
        .build();
    let mut tokenizer = TokenizerBuilder::<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >::new()
    .with_model(model)
    .with_pre_tokenizer(Some(pre_tokenizer))
    .with_decoder(Some(decoder))
    .build()
    .map_err(tokenizer_error)?;
    let lines: Vec<&str> = CORPUS.lines().collect();
    tokenizer
        .train(&mut trainer, lines.iter().copied())
        .map_err(tokenizer_error)?;
    Ok(tokenizer.into())
}

const LARGE_MODEL: i64 = 100_000_000;

/// Standard normals of `shape`: from `rng` (reproducible whatever else runs) for small
/// models, from libtorch's generator (seeded per tensor) for large ones.
fn standard_normal(rng: &mut SeededRng, shape: &[i64], large: bool) -> Tensor {
    if large {
        Tensor::randn(shape, (tch::Kind::Float, Device::Cpu))
    } else {
        normal_tensor(rng, shape, 1.0, Device::Cpu)
    }
}

fn random_tensor(rng: &mut SeededRng, name: &str, shape: &[i64], large: bool) -> Tensor {
    let normal = standard_normal(rng, shape, large);
    if name.ends_with("norm.weight") {
        return normal * 0.1 + 1.0;
    }
    if name.ends_with(".bias") {
        return normal * 0.1;
    }
    let fan_in = shape.last().copied().unwrap_or(1) as f64;
    normal * (1.0 / fan_in.sqrt())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| ModelError::Input(error.to_string()))?;
    write_file(path, text.as_bytes())
}

/// Writes a random model of `spec` to `out` (created if needed); the same seed gives the same files.
pub fn init_tiny(spec: &TinySpec, out: &Path, seed: u64) -> Result<ModelConfig> {
    std::fs::create_dir_all(out).map_err(|source| ModelError::Io {
        path: out.to_owned(),
        source,
    })?;
    let tokenizer = train_tokenizer(spec.vocab_size as usize, spec.sentencepiece)?;
    let tokenizer_path = out.join("tokenizer.json");
    tokenizer
        .save(&tokenizer_path, false)
        .map_err(|error| ModelError::Tokenizer {
            path: tokenizer_path.clone(),
            reason: error.to_string(),
        })?;
    let id = |token: &str| tokenizer.token_to_id(token).map(i64::from).unwrap_or(0);
    let trained = tokenizer.get_vocab_size(true) as i64;
    let vocab_size = if spec.keep_vocab_size {
        spec.vocab_size.max(trained)
    } else {
        trained
    };
    let bos = id("<|begin_of_text|>");
    let eos = [id("<|eot_id|>"), id("<|end_of_text|>")];
    let config_json = spec.config_json(vocab_size, bos, &eos);
    write_json(&out.join("config.json"), &config_json)?;
    write_json(
        &out.join("generation_config.json"),
        &json!({"bos_token_id": bos, "eos_token_id": eos, "do_sample": false}),
    )?;
    let added: serde_json::Map<String, serde_json::Value> = SPECIAL_TOKENS
        .iter()
        .map(|token| {
            (
                id(token).to_string(),
                json!({"content": token, "lstrip": false, "normalized": false, "rstrip": false,
                       "single_word": false, "special": true}),
            )
        })
        .collect();
    write_json(
        &out.join("tokenizer_config.json"),
        &json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<|begin_of_text|>",
            "eos_token": "<|eot_id|>",
            "pad_token": "<|end_of_text|>",
            "model_max_length": 4096,
            "clean_up_tokenization_spaces": false,
            "added_tokens_decoder": added,
            "chat_template": CHAT_TEMPLATE,
        }),
    )?;
    let config = ModelConfig::from_value(config_json, &out.join("config.json"))?;
    let kind = kind_of_dtype_name(spec.torch_dtype);
    let large = config.parameter_count() > LARGE_MODEL;
    let mut rng = SeededRng::new(seed);
    let shapes = tensor_shapes(&config);
    if large {
        let plan: Vec<PlannedTensor> = shapes
            .iter()
            .map(|(name, shape)| PlannedTensor {
                name: name.clone(),
                bytes: shape.iter().product::<i64>() as u64 * kind.elt_size_in_bytes() as u64,
            })
            .collect();
        save_sharded_with(out, &plan, 5_000_000_000, |position| {
            tch::manual_seed(seed as i64 + position as i64);
            let (name, shape) = &shapes[position];
            Ok(random_tensor(&mut rng, name, shape, true).to_kind(kind))
        })?;
        return Ok(config);
    }
    let tensors: Vec<(String, Tensor)> = shapes
        .into_iter()
        .map(|(name, shape)| {
            let tensor = random_tensor(&mut rng, &name, &shape, false).to_kind(kind);
            (name, tensor)
        })
        .collect();
    let metadata = [("format".to_owned(), "pt".to_owned())].into();
    save_file(&out.join("model.safetensors"), &tensors, Some(metadata))?;
    Ok(config)
}
