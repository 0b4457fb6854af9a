//! The facts of a case and the rules that turn them into the gold label.
//!
//! The generator picks facts, renders them into the alert, and the label follows from the
//! facts by [`decide`]; nothing is labelled by hand.

use aml_core::Label;

/// How the customer's name relates to the listed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRelation {
    /// The same spelling.
    Exact,
    /// The same name with minor noise: order, diacritics, initials, a typo, a legal-suffix variant.
    Minor,
    /// The same name in another romanisation, script or alias.
    Transliterated,
    /// Only sounds alike or shares one token: a different name.
    Weak,
    /// Unrelated names.
    Different,
}

/// How a field of the customer relates to the entry's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRelation {
    /// Both have it and it agrees.
    Agree,
    /// Compatible but not conclusive (a year against a full date, a band).
    Consistent,
    /// Both have it and it differs.
    Conflict,
    /// One side lacks it.
    Unknown,
}

/// The facts that decide a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    /// Name relation.
    pub name: NameRelation,
    /// Date of birth.
    pub dob: FieldRelation,
    /// Nationality (persons) or country of incorporation (organisations).
    pub nationality: FieldRelation,
    /// Passport, national id, LEI or company number.
    pub id: FieldRelation,
    /// An ownership or control link to the listed entity (organisations).
    pub link: FieldRelation,
    /// Who the bank's KYC notes (the alert's context) say the customer is: a birth year, a
    /// listed person's death or a listed company's dissolution before the customer appears.
    /// Decisive in conflict, as a date of birth is; only a reader sees it, not the prescreen.
    pub profile: FieldRelation,
}

/// The gold label the facts imply.
///
/// - unrelated names: NO_MATCH;
/// - a hard conflict (DOB, identifier or KYC profile) and nothing hard agreeing: NO_MATCH
///   (near-collision);
/// - a hard conflict against hard agreement: EDGE (conflicting evidence);
/// - two hard agreements (DOB, identifier, ownership link): MATCH;
/// - one hard agreement with a real name variant and no nationality conflict: MATCH;
/// - otherwise only soft evidence: EDGE.
pub fn decide(evidence: &Evidence) -> Label {
    if evidence.name == NameRelation::Different {
        return Label::NoMatch;
    }
    let agreements = [evidence.dob, evidence.id, evidence.link]
        .iter()
        .filter(|relation| **relation == FieldRelation::Agree)
        .count();
    let conflicts = [evidence.dob, evidence.id, evidence.profile]
        .iter()
        .filter(|relation| **relation == FieldRelation::Conflict)
        .count();
    if conflicts > 0 {
        return if agreements == 0 {
            Label::NoMatch
        } else {
            Label::Edge
        };
    }
    if agreements >= 2 {
        return Label::Match;
    }
    if agreements == 1
        && evidence.name != NameRelation::Weak
        && evidence.nationality != FieldRelation::Conflict
    {
        return Label::Match;
    }
    if agreements == 0
        && evidence.name == NameRelation::Weak
        && evidence.nationality == FieldRelation::Conflict
    {
        return Label::NoMatch;
    }
    Label::Edge
}

#[cfg(test)]
mod tests {
    use super::*;
    use FieldRelation::*;

    fn evidence(
        name: NameRelation,
        dob: FieldRelation,
        nationality: FieldRelation,
        id: FieldRelation,
    ) -> Evidence {
        Evidence {
            name,
            dob,
            nationality,
            id,
            link: Unknown,
            profile: Unknown,
        }
    }

    #[test]
    fn rules_give_the_expected_labels() {
        assert_eq!(
            decide(&evidence(NameRelation::Exact, Agree, Agree, Agree)),
            Label::Match
        );
        assert_eq!(
            decide(&evidence(
                NameRelation::Transliterated,
                Agree,
                Unknown,
                Unknown
            )),
            Label::Match
        );
        assert_eq!(
            decide(&evidence(NameRelation::Exact, Conflict, Conflict, Unknown)),
            Label::NoMatch
        );
        assert_eq!(
            decide(&evidence(NameRelation::Different, Agree, Agree, Agree)),
            Label::NoMatch
        );
        assert_eq!(
            decide(&evidence(
                NameRelation::Transliterated,
                Agree,
                Agree,
                Conflict
            )),
            Label::Edge
        );
        assert_eq!(
            decide(&evidence(NameRelation::Exact, Consistent, Agree, Unknown)),
            Label::Edge
        );
        assert_eq!(
            decide(&evidence(NameRelation::Weak, Agree, Agree, Unknown)),
            Label::Edge
        );
        assert_eq!(
            decide(&evidence(NameRelation::Weak, Unknown, Conflict, Unknown)),
            Label::NoMatch
        );
        let kyc = |dob| Evidence {
            profile: Conflict,
            ..evidence(NameRelation::Exact, dob, Agree, Unknown)
        };
        assert_eq!(decide(&kyc(Unknown)), Label::NoMatch);
        assert_eq!(decide(&kyc(Agree)), Label::Edge);
    }
}
