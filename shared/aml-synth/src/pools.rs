//! Fictional but plausible material: names, organisations, countries, lists, risk context.

/// Western given names.
pub const WESTERN_GIVEN: [&str; 20] = [
    "John", "Maria", "Thomas", "Anna", "Peter", "Laura", "Michael", "Sofia", "David", "Elena",
    "James", "Claire", "Robert", "Julia", "Daniel", "Marta", "Henry", "Isabel", "George", "Emma",
];

/// Western surnames.
pub const WESTERN_SURNAMES: [&str; 20] = [
    "Garcia",
    "Muller",
    "Schneider",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Johnson",
    "Novak",
    "Fischer",
    "Lopez",
    "Martin",
    "Bianchi",
    "Jansen",
    "Silva",
    "Horvat",
    "Weber",
    "Moreau",
    "Nielsen",
    "Costa",
    "Brennan",
];

/// Maiden/married surname pairs for aliases.
pub const MARRIED_SURNAMES: [&str; 8] = [
    "Hartmann",
    "Whitfield",
    "Lindqvist",
    "Ferreira",
    "Okafor",
    "Varga",
    "Petit",
    "Ruiz",
];

/// Words for organisation names.
pub const ORG_WORDS: [&str; 24] = [
    "Golden", "Crescent", "Northern", "Star", "Baltic", "Meridian", "Silk", "Road", "Atlas",
    "Harbor", "Cedar", "Falcon", "Orient", "Summit", "Delta", "Sapphire", "Caspian", "Pioneer",
    "Trans", "Union", "Lotus", "Granite", "Aurora", "Pacific",
];

/// Activities that end organisation names.
pub const ORG_ACTIVITIES: [&str; 10] = [
    "Trading",
    "Shipping",
    "Holdings",
    "Logistics",
    "Petroleum",
    "Metals",
    "Investments",
    "General Trading",
    "Maritime",
    "Finance",
];

/// Legal-form families with their spelling variants.
pub const LEGAL_SUFFIXES: [&[&str]; 8] = [
    &["Ltd", "Limited", "Ltd."],
    &["LLC", "L.L.C.", "Limited Liability Company"],
    &["S.A.", "SA", "Sociedad Anonima"],
    &["GmbH", "G.m.b.H.", "Gesellschaft mbH"],
    &["OOO", "LLC", "Obshchestvo s ogranichennoy otvetstvennostyu"],
    &["FZE", "Free Zone Establishment", "FZE LLC"],
    &["JSC", "AO", "Joint Stock Company"],
    &["B.V.", "BV", "Besloten Vennootschap"],
];

/// A country: ISO code, name, whether it is a high-risk jurisdiction (FATF lists, sanctions).
pub const COUNTRIES: [(&str, &str, bool); 16] = [
    ("RU", "Russia", true),
    ("IR", "Iran", true),
    ("KP", "North Korea", true),
    ("SY", "Syria", true),
    ("AE", "United Arab Emirates", false),
    ("CN", "China", false),
    ("HK", "Hong Kong", false),
    ("CY", "Cyprus", false),
    ("TR", "Turkey", false),
    ("GB", "United Kingdom", false),
    ("DE", "Germany", false),
    ("FR", "France", false),
    ("ES", "Spain", false),
    ("SA", "Saudi Arabia", false),
    ("VG", "British Virgin Islands", true),
    ("PA", "Panama", true),
];

/// Watchlists and the programmes listed on them.
pub const LISTS: [(&str, &str); 6] = [
    ("OFAC SDN", "UKRAINE-EO13662"),
    ("OFAC SDN", "IRAN-EO13846"),
    ("EU Consolidated", "Regulation 269/2014"),
    ("UN Consolidated", "1718 (DPRK)"),
    ("UK HMT", "Russia"),
    ("PEP", "senior public function"),
];

/// KYC, geographic and product risk notes; they raise priority, never decide identity.
pub const RISK_CONTEXT: [&str; 12] = [
    "KYC red flag: the customer's passport on file expired two years ago",
    "KYC red flag: the registered address is a PO Box",
    "KYC red flag: the name on the utility bill differs from the account holder",
    "Geographic risk: correspondent banking relationship routed through a high-risk jurisdiction",
    "Product risk: frequent transfers to a crypto exchange",
    "Product risk: the customer is a money service business",
    "Transaction pattern: cash deposits of 9,500 and 9,800 on consecutive days, below the reporting threshold (possible structuring)",
    "Transaction pattern: rapid movement of funds through several accounts (possible smurfing)",
    "Shell company signs: no employees, nominee directors, incorporated last month",
    "High-value wire of USD 2.4 million to a newly opened account",
    "Trade finance: invoices for dual-use goods shipped via a transit hub",
    "No adverse context recorded",
];
