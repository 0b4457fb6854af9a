//! The checks every alert passes when the batch that reads it is cut (the scheduler's intake).

use aml_proto::Validate;
use aml_proto::v1::Alert;
use prost::Message;

/// What intake accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeRules {
    /// Known banks; empty accepts any well-formed bank name.
    pub banks: Vec<String>,
    /// Largest accepted alert, encoded bytes.
    pub max_alert_bytes: usize,
}

/// The bank a subject `aml.alerts.<bank>` names.
pub fn bank_of_subject(subject: &str) -> Option<&str> {
    subject.strip_prefix("aml.alerts.")
}

/// Checks an alert that arrived on `subject`; the error is the reason recorded in the DLQ.
pub fn check_alert(alert: &Alert, subject: &str, rules: &IntakeRules) -> Result<(), String> {
    let size = alert.encoded_len();
    if size > rules.max_alert_bytes {
        return Err(format!(
            "alert {} is {size} bytes, over the limit of {}",
            alert.alert_id, rules.max_alert_bytes
        ));
    }
    let bank = bank_of_subject(subject)
        .ok_or_else(|| format!("subject {subject} is not aml.alerts.<bank>"))?;
    if !aml_bus::topology::valid_bank(bank)
        || (!rules.banks.is_empty() && !rules.banks.iter().any(|b| b == bank))
    {
        return Err(format!("unknown bank `{bank}`"));
    }
    if alert.bank != bank {
        return Err(format!(
            "alert {} says bank `{}` but was published on {subject}",
            alert.alert_id, alert.bank
        ));
    }
    if alert.alert_id.chars().any(char::is_control) {
        return Err(format!(
            "alert id {:?} holds control characters",
            alert.alert_id
        ));
    }
    alert.validate().map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> IntakeRules {
        IntakeRules {
            banks: vec!["acme".into()],
            max_alert_bytes: 1024,
        }
    }

    fn alert(bank: &str) -> Alert {
        Alert {
            alert_id: "a-1".into(),
            bank: bank.into(),
            party: Some(aml_proto::v1::Party {
                kind: aml_proto::v1::EntityKind::Person as i32,
                name: "Ivan Petrov".into(),
                ..Default::default()
            }),
            entry: Some(aml_proto::v1::WatchlistEntry {
                kind: aml_proto::v1::EntityKind::Person as i32,
                name: "Ivan Petrov".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_known_bank_and_names_each_rejection() {
        check_alert(&alert("acme"), "aml.alerts.acme", &rules()).unwrap();
        let mut nameless = alert("acme");
        nameless.party.as_mut().unwrap().name.clear();
        let missing = check_alert(&nameless, "aml.alerts.acme", &rules()).unwrap_err();
        assert!(missing.contains("party.name"), "{missing}");
        let unknown = check_alert(&alert("evil"), "aml.alerts.evil", &rules()).unwrap_err();
        assert!(unknown.contains("unknown bank `evil`"), "{unknown}");
        let spoofed = check_alert(
            &alert("acme"),
            "aml.alerts.other",
            &IntakeRules {
                banks: vec![],
                ..rules()
            },
        )
        .unwrap_err();
        assert!(spoofed.contains("says bank `acme`"), "{spoofed}");
        let mut big = alert("acme");
        big.context = "x".repeat(2000);
        let oversize = check_alert(&big, "aml.alerts.acme", &rules()).unwrap_err();
        assert!(oversize.contains("over the limit of 1024"), "{oversize}");
        let mut broken = alert("acme");
        broken.alert_id = "a-1\nb-2".into();
        let control = check_alert(&broken, "aml.alerts.acme", &rules()).unwrap_err();
        assert!(control.contains("control characters"), "{control}");
    }
}
