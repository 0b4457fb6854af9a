//! Provider keys and endpoints handed from the configuration to a client, under their
//! usual variable names; never shown by `Debug`, never serialised.

/// Variables such as `ANTHROPIC_API_KEY` and `OPENAI_BASE_URL`, as
/// [`crate::ProviderSettings::from_environment`] reads them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials(pub Vec<(String, String)>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|(name, _)| name.as_str()).collect();
        write!(formatter, "Credentials({names:?}, values redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_variables_without_their_values() {
        let credentials = Credentials(vec![("ANTHROPIC_API_KEY".into(), "sk-ant-secret".into())]);
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("ANTHROPIC_API_KEY") && !shown.contains("sk-ant-secret"),
            "{shown}"
        );
    }
}
