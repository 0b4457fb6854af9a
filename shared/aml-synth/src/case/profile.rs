//! The KYC notes that rule a customer out when the screening record alone cannot: a birth
//! year from a document seen at onboarding, a listed person's death, a listed company's
//! dissolution, a listed ship's scrapping or a listed airframe's loss before the customer
//! appeared. Written into the alert's context, which the prescreen does not read.

use aml_core::rng::SeededRng;
use aml_proto::v1::EntityKind;

use super::Reasoning;

/// The note for a case of `kind` whose profile conflicts, with its line of reasoning;
/// `entry_dob` is the listed person's date of birth (empty for anything else).
pub(super) fn kyc_conflict_note(
    rng: &mut SeededRng,
    kind: EntityKind,
    entry_dob: &str,
    reasoning: &mut Reasoning,
) -> String {
    reasoning.conflicting.push("KYC facts");
    let entry_year: Option<i64> = entry_dob.get(..4).and_then(|year| year.parse().ok());
    match (kind, entry_year) {
        (EntityKind::Person, Some(entry_year)) if rng.chance(0.6) => {
            let gap = rng.range(18, 30);
            let born = if entry_year + gap <= 2005 {
                entry_year + gap
            } else {
                entry_year - gap
            };
            reasoning.line(format!(
                "KYC notes: the customer was born in {born} (driving licence seen at onboarding), the entry on {entry_dob}: {gap} years apart."
            ));
            format!(
                "KYC file: the customer's driving licence, seen at onboarding, gives year of birth {born}; the screening record carries no date of birth"
            )
        }
        (EntityKind::Person, _) => {
            let died = rng.range(2008, 2016);
            let opened = died + rng.range(3, 8);
            reasoning.line(format!(
                "KYC notes: the listed person died in {died}; the customer opened the account in person in {opened}, so cannot be them."
            ));
            format!(
                "KYC file: the list entry is annotated deceased in {died}; the customer opened the account in person at a branch in {opened}"
            )
        }
        (EntityKind::Vessel, _) => {
            let scrapped = rng.range(2009, 2016);
            let built = scrapped + rng.range(2, 8);
            reasoning.line(format!(
                "KYC notes: the vessel in the documents was built in {built}; the listed vessel was scrapped in {scrapped}."
            ));
            format!(
                "KYC file: the bill of lading's vessel was built in {built} (class certificate on file); the listed vessel was reported scrapped in {scrapped}"
            )
        }
        (EntityKind::Aircraft, _) => {
            let lost = rng.range(2009, 2016);
            let delivered = lost + rng.range(2, 8);
            reasoning.line(format!(
                "KYC notes: the leased aircraft was delivered new in {delivered}; the listed airframe was written off in {lost}."
            ));
            format!(
                "KYC file: the aircraft in the lease was delivered new from the factory in {delivered}; the listed airframe was written off in {lost}"
            )
        }
        _ => {
            let dissolved = rng.range(2009, 2016);
            let incorporated = dissolved + rng.range(3, 9);
            reasoning.line(format!(
                "KYC notes: the customer was incorporated in {incorporated}, {} years after the listed company was dissolved ({dissolved}).",
                incorporated - dissolved
            ));
            format!(
                "KYC file: the customer was incorporated in {incorporated} as a new company; the listed company was dissolved in {dissolved} and its designation names no successor"
            )
        }
    }
}
