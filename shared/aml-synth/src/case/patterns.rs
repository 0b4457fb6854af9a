//! The evidence patterns a case is built from, per entity kind, label and tier: each implies
//! its label by the rules of [`crate::evidence::decide`].

use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label};

use crate::evidence::{Evidence, FieldRelation, NameRelation};

use FieldRelation::{Agree, Conflict, Consistent, Unknown};

fn evidence(
    name: NameRelation,
    dob: FieldRelation,
    nationality: FieldRelation,
    id: FieldRelation,
    link: FieldRelation,
) -> Evidence {
    Evidence {
        name,
        dob,
        nationality,
        id,
        link,
        profile: Unknown,
    }
}

/// A near-collision ruled out by the KYC notes alone: no date of birth or document on the
/// customer's record, the notes conflict with the entry (see `super::profile`).
fn kyc_conflict(name: NameRelation, nationality: FieldRelation) -> Evidence {
    Evidence {
        profile: Conflict,
        ..evidence(name, Unknown, nationality, Unknown, Unknown)
    }
}

pub(super) fn person_pattern(
    label: Label,
    difficulty: Difficulty,
    rng: &mut SeededRng,
) -> Evidence {
    use NameRelation::*;
    let options: &[Evidence] = match (label, difficulty) {
        (Label::Match, Difficulty::Easy) => &[evidence(Exact, Agree, Agree, Agree, Unknown)],
        (Label::Match, Difficulty::Medium) => &[
            evidence(Minor, Agree, Agree, Unknown, Unknown),
            evidence(Minor, Unknown, Agree, Agree, Unknown),
        ],
        (Label::Match, Difficulty::Hard) => &[
            evidence(Transliterated, Agree, Unknown, Agree, Unknown),
            evidence(Transliterated, Consistent, Agree, Agree, Unknown),
            evidence(Transliterated, Agree, Agree, Unknown, Unknown),
        ],
        // Negatives are near-collisions, as the alerts a screening engine raises are: the
        // same name (or a variant, or a shared surname) with a conflicting date of birth,
        // nationality or document, or a record without them that the KYC notes rule out
        // (a third of the easy negatives, half of the others). One easy negative in six has
        // an unrelated name.
        (Label::NoMatch, Difficulty::Easy) => &[
            evidence(Exact, Conflict, Conflict, Conflict, Unknown),
            evidence(Exact, Conflict, Conflict, Unknown, Unknown),
            evidence(Minor, Conflict, Conflict, Conflict, Unknown),
            evidence(Different, Conflict, Conflict, Unknown, Unknown),
            kyc_conflict(Exact, Unknown),
            kyc_conflict(Exact, Agree),
        ],
        (Label::NoMatch, Difficulty::Medium) => &[
            evidence(Minor, Conflict, Conflict, Unknown, Unknown),
            evidence(Weak, Conflict, Conflict, Unknown, Unknown),
            evidence(Weak, Unknown, Conflict, Unknown, Unknown),
            evidence(Exact, Conflict, Unknown, Conflict, Unknown),
            kyc_conflict(Exact, Agree),
            kyc_conflict(Exact, Unknown),
            kyc_conflict(Minor, Agree),
            kyc_conflict(Minor, Unknown),
        ],
        (Label::NoMatch, Difficulty::Hard) => &[
            evidence(Exact, Conflict, Conflict, Unknown, Unknown),
            evidence(Exact, Conflict, Agree, Unknown, Unknown),
            evidence(Transliterated, Conflict, Agree, Conflict, Unknown),
            evidence(Transliterated, Conflict, Unknown, Unknown, Unknown),
            kyc_conflict(Exact, Agree),
            kyc_conflict(Minor, Agree),
            kyc_conflict(Transliterated, Agree),
            kyc_conflict(Transliterated, Unknown),
        ],
        (Label::Edge, Difficulty::Easy) => &[evidence(Exact, Consistent, Agree, Unknown, Unknown)],
        (Label::Edge, Difficulty::Medium) => &[
            evidence(Minor, Consistent, Unknown, Unknown, Unknown),
            evidence(Weak, Agree, Agree, Unknown, Unknown),
        ],
        (Label::Edge, Difficulty::Hard) => &[
            evidence(Transliterated, Agree, Agree, Conflict, Unknown),
            evidence(Transliterated, Consistent, Agree, Unknown, Unknown),
        ],
    };
    *rng.pick(options)
}

pub(super) fn org_pattern(label: Label, difficulty: Difficulty, rng: &mut SeededRng) -> Evidence {
    use NameRelation::*;
    let options: &[Evidence] = match (label, difficulty) {
        (Label::Match, Difficulty::Easy) => &[evidence(Exact, Unknown, Agree, Agree, Unknown)],
        (Label::Match, Difficulty::Medium) => &[evidence(Minor, Unknown, Agree, Agree, Unknown)],
        (Label::Match, Difficulty::Hard) => &[evidence(Minor, Unknown, Unknown, Agree, Agree)],
        (Label::NoMatch, Difficulty::Easy) => &[
            evidence(Exact, Unknown, Conflict, Conflict, Unknown),
            evidence(Minor, Unknown, Conflict, Conflict, Unknown),
            evidence(Exact, Unknown, Unknown, Conflict, Unknown),
            evidence(Different, Unknown, Conflict, Conflict, Unknown),
        ],
        // Weak, for organisations: a name that differs only by a numeral, or shares a word.
        (Label::NoMatch, Difficulty::Medium) => &[
            evidence(Weak, Unknown, Conflict, Unknown, Unknown),
            evidence(Weak, Unknown, Conflict, Conflict, Unknown),
            kyc_conflict(Exact, Agree),
            kyc_conflict(Minor, Agree),
        ],
        (Label::NoMatch, Difficulty::Hard) => &[
            evidence(Exact, Unknown, Conflict, Conflict, Unknown),
            evidence(Minor, Unknown, Conflict, Conflict, Unknown),
            kyc_conflict(Exact, Agree),
            kyc_conflict(Minor, Unknown),
        ],
        (Label::Edge, Difficulty::Easy) => &[evidence(Exact, Unknown, Agree, Unknown, Unknown)],
        (Label::Edge, Difficulty::Medium) => &[evidence(Minor, Unknown, Agree, Unknown, Unknown)],
        (Label::Edge, Difficulty::Hard) => &[evidence(Minor, Unknown, Agree, Conflict, Agree)],
    };
    *rng.pick(options)
}
