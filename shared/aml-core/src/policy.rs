//! The built-in shared prefix: the screening policy every alert of a batch is judged under,
//! and the system prompt training uses to match it.
//! Banks replace it with their own document (`scoring.policy_url`); it is encoded once per
//! worker and model, however many alerts follow it.

/// The built-in policy document.
pub const DEFAULT_POLICY: &str = "\
Sanctions and PEP screening policy (built-in default).

Purpose. An alert pairs a customer (or counterparty) with a watchlist entry that a name \
screening engine found similar. Decide whether they are the same real-world entity.

Decisions.
- MATCH: the customer is the listed entity. Names agree allowing for transliteration, \
spelling, order and aliases, and the other identifiers agree or are consistent: date of \
birth, nationality or country, passport, national id, LEI, registration number.
- NO_MATCH: the customer is a different entity. A hard conflict settles it: a different \
date of birth (other than a one-digit typo or a day/month swap), a different identifier of \
the same kind and issuer, a different entity type, or a name that is only superficially similar.
- EDGE: the evidence neither confirms nor excludes. Names agree but identifiers are missing, \
or one attribute agrees and another conflicts. EDGE goes to an analyst.

Rules.
1. Never clear an alert on the name alone when identifiers are missing and the name agrees.
2. Transliteration variants (Cyrillic, Arabic, Chinese) are the same name.
3. Legal-form differences (Ltd, Limited, LLC) do not distinguish companies.
4. Owners, directors and controlling persons of listed entities are escalated.
5. Cite the fields that decide it. Recall of true matches comes first: when unsure, EDGE.
";
