//! Agreement or conflict of the attributes beside the name: date of birth, country and
//! identifiers.

use aml_proto::v1::{Identifier, Party, WatchlistEntry};

/// How one attribute of the customer compares with the listed entity's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Both sides give it and it agrees.
    Agree,
    /// Both sides give it and it disagrees.
    Conflict,
    /// One side lacks it, or the two cannot be compared.
    Unknown,
}

/// A date as screening data carries it: a year, maybe a month and a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartialDate {
    year: u16,
    month: Option<u8>,
    day: Option<u8>,
}

/// Reads `YYYY`, `YYYY-MM`, `YYYY-MM-DD` and `DD/MM/YYYY` / `DD.MM.YYYY`; else `None`.
fn parse_date(text: &str) -> Option<PartialDate> {
    let parts: Vec<&str> = text
        .trim()
        .split(['-', '/', '.', ' '])
        .filter(|part| !part.is_empty())
        .collect();
    let number = |part: &str| part.parse::<u16>().ok();
    match parts.as_slice() {
        [year] if year.len() == 4 => Some(PartialDate {
            year: number(year)?,
            month: None,
            day: None,
        }),
        [year, month] if year.len() == 4 => Some(PartialDate {
            year: number(year)?,
            month: Some(number(month)? as u8),
            day: None,
        }),
        [year, month, day] if year.len() == 4 => Some(PartialDate {
            year: number(year)?,
            month: Some(number(month)? as u8),
            day: Some(number(day)? as u8),
        }),
        [day, month, year] if year.len() == 4 => Some(PartialDate {
            year: number(year)?,
            month: Some(number(month)? as u8),
            day: Some(number(day)? as u8),
        }),
        _ => None,
    }
}

/// Dates of birth: the same year (and month and day where both give them) agree; years
/// more than one apart conflict; a one-year gap or unreadable dates are unknown.
pub fn date_of_birth(a: &str, b: &str) -> Relation {
    let (Some(a), Some(b)) = (parse_date(a), parse_date(b)) else {
        return Relation::Unknown;
    };
    if a.year.abs_diff(b.year) > 1 {
        return Relation::Conflict;
    }
    if a.year != b.year {
        return Relation::Unknown;
    }
    let differs = |x: Option<u8>, y: Option<u8>| matches!((x, y), (Some(x), Some(y)) if x != y);
    if differs(a.month, b.month) || differs(a.day, b.day) {
        return Relation::Unknown;
    }
    Relation::Agree
}

fn countries<'a>(values: [&'a str; 2]) -> impl Iterator<Item = String> + 'a {
    values
        .into_iter()
        .map(|value| value.trim().to_ascii_lowercase())
        .filter(|value| !value.is_empty())
}

/// Countries (nationality and residence on each side): any shared value agrees; values on
/// both sides with none shared conflict.
pub fn country(party: &Party, entry: &WatchlistEntry) -> Relation {
    let ours: Vec<String> = countries([&party.nationality, &party.country]).collect();
    let theirs: Vec<String> = countries([&entry.nationality, &entry.country]).collect();
    if ours.is_empty() || theirs.is_empty() {
        Relation::Unknown
    } else if ours.iter().any(|value| theirs.contains(value)) {
        Relation::Agree
    } else {
        Relation::Conflict
    }
}

fn canonical_id(value: &str) -> String {
    value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Identifiers: the same value agrees; the same kind (and issuing country, where both give
/// it) with different values conflicts.
pub fn identifiers(ours: &[Identifier], theirs: &[Identifier]) -> Relation {
    let mut conflict = false;
    for a in ours {
        let a_value = canonical_id(&a.value);
        if a_value.is_empty() {
            continue;
        }
        for b in theirs {
            let b_value = canonical_id(&b.value);
            if a_value == b_value {
                return Relation::Agree;
            }
            let same_kind = !a.kind.is_empty() && a.kind.eq_ignore_ascii_case(&b.kind);
            let same_issuer = a.country.is_empty()
                || b.country.is_empty()
                || a.country.eq_ignore_ascii_case(&b.country);
            if same_kind && same_issuer && !b_value.is_empty() {
                conflict = true;
            }
        }
    }
    if conflict {
        Relation::Conflict
    } else {
        Relation::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_agree_conflict_or_say_nothing() {
        assert_eq!(date_of_birth("1970-03-02", "02/03/1970"), Relation::Agree);
        assert_eq!(date_of_birth("1970", "1970-03-02"), Relation::Agree);
        assert_eq!(date_of_birth("1970-03-02", "1985"), Relation::Conflict);
        assert_eq!(date_of_birth("1970-03-02", "1971-03-02"), Relation::Unknown);
        assert_eq!(date_of_birth("circa 1970", "1970"), Relation::Unknown);
        assert_eq!(date_of_birth("", "1970"), Relation::Unknown);
    }

    #[test]
    fn identifiers_match_by_canonical_value_and_conflict_by_kind() {
        let id = |kind: &str, value: &str, country: &str| Identifier {
            kind: kind.into(),
            value: value.into(),
            country: country.into(),
        };
        let ours = [id("passport", "ab 123-456", "RU")];
        assert_eq!(
            identifiers(&ours, &[id("passport", "AB123456", "RU")]),
            Relation::Agree
        );
        assert_eq!(
            identifiers(&ours, &[id("passport", "ZZ999", "RU")]),
            Relation::Conflict
        );
        assert_eq!(
            identifiers(&ours, &[id("passport", "ZZ999", "FR")]),
            Relation::Unknown
        );
        assert_eq!(identifiers(&ours, &[]), Relation::Unknown);
    }
}
