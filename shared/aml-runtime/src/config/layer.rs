//! A figment provider for flat `KEY=value` sources: environment variables, `.env` files and
//! command-line flags. It remembers where each key came from, so errors can name the
//! variable or flag.

use std::collections::BTreeMap;
use std::sync::Arc;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::{ENV_PREFIX, FLAG_VARIABLES, Flag, standard_key};

/// One key set by a flat source.
#[derive(Debug, Clone)]
struct Entry {
    path: Vec<String>,
    value: Value,
    origin: String,
}

/// A layer built from flat key/value pairs.
#[derive(Debug, Clone)]
pub(super) struct KeyedLayer {
    name: String,
    entries: Vec<Entry>,
}

impl KeyedLayer {
    /// Reads `AML_SECTION__KEY=value` variables (and the standard ones); others, and the
    /// binaries' own [`FLAG_VARIABLES`], are ignored.
    pub(super) fn from_variables(name: String, variables: &[(String, String)]) -> Self {
        let mut entries = Vec::new();
        for (variable, raw) in variables {
            if FLAG_VARIABLES.contains(&variable.as_str()) {
                continue;
            }
            let path = if let Some(rest) = variable.strip_prefix(ENV_PREFIX) {
                rest.split("__")
                    .map(|part| part.to_ascii_lowercase())
                    .collect()
            } else if let Some(key) = standard_key(variable) {
                key.split('.').map(str::to_owned).collect()
            } else {
                continue;
            };
            let value: Value = raw.parse().unwrap_or_else(|never| match never {});
            entries.push(Entry {
                path,
                value,
                origin: variable.clone(),
            });
        }
        KeyedLayer { name, entries }
    }

    /// Takes command-line flags.
    pub(super) fn from_flags(flags: &[Flag]) -> Self {
        let entries = flags
            .iter()
            .map(|flag| Entry {
                path: flag.key.split('.').map(str::to_owned).collect(),
                value: flag.value.clone(),
                origin: flag.name.clone(),
            })
            .collect();
        KeyedLayer {
            name: "command line".to_owned(),
            entries,
        }
    }
}

fn insert(dict: &mut Dict, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let child = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if child.as_dict().is_none() {
        *child = Value::from(Dict::new());
    }
    if let Value::Dict(_, child_dict) = child {
        insert(child_dict, rest, value);
    }
}

impl Provider for KeyedLayer {
    fn metadata(&self) -> Metadata {
        let origins: Arc<BTreeMap<String, String>> = Arc::new(
            self.entries
                .iter()
                .map(|entry| (entry.path.join("."), entry.origin.clone()))
                .collect(),
        );
        Metadata::named(self.name.clone()).interpolater(move |_: &Profile, keys: &[&str]| {
            let key = keys.join(".");
            origins.get(&key).cloned().unwrap_or(key)
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for entry in &self.entries {
            insert(&mut dict, &entry.path, entry.value.clone());
        }
        Ok(Profile::Default.collect(dict))
    }
}
