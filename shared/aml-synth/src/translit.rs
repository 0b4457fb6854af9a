//! Romanisation: Cyrillic under several systems (Yevgeniy / Evgenii / Jewgeni), Chinese in
//! pinyin and Wade-Giles, and the real spelling variants mined from Wikidata (see
//! `data/README.md`).

use aml_core::rng::SeededRng;

/// Romanisation systems for Cyrillic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CyrillicSystem {
    /// BGN/PCGN, as in English-language press: Yevgeniy Volkov.
    Bgn,
    /// ICAO 9303, as in machine-readable passports: Evgenii Volkov.
    Icao,
    /// German (Duden): Jewgeni Wolkow.
    German,
}

impl CyrillicSystem {
    /// Every system.
    pub const ALL: [CyrillicSystem; 3] = [
        CyrillicSystem::Bgn,
        CyrillicSystem::Icao,
        CyrillicSystem::German,
    ];

    /// A short name for the reasoning text.
    pub fn name(self) -> &'static str {
        match self {
            CyrillicSystem::Bgn => "BGN/PCGN",
            CyrillicSystem::Icao => "ICAO passport",
            CyrillicSystem::German => "German",
        }
    }
}

const VOWELS: &str = "аеёиоуыэюяьъ";

fn cyrillic_letter(
    letter: char,
    previous: Option<char>,
    next: Option<char>,
    system: CyrillicSystem,
) -> String {
    let word_start_or_after_vowel = previous.is_none_or(|p| VOWELS.contains(p));
    let text = match (system, letter) {
        (_, 'а') => "a",
        (_, 'б') => "b",
        (CyrillicSystem::German, 'в') => "w",
        (_, 'в') => "v",
        (_, 'г') => "g",
        (_, 'д') => "d",
        (CyrillicSystem::Bgn, 'е') if word_start_or_after_vowel => "ye",
        (CyrillicSystem::German, 'е') if word_start_or_after_vowel => "je",
        (_, 'е') => "e",
        (CyrillicSystem::Bgn, 'ё') => "yo",
        (CyrillicSystem::German, 'ё') => "jo",
        (_, 'ё') => "e",
        (CyrillicSystem::German, 'ж') => "sch",
        (_, 'ж') => "zh",
        (CyrillicSystem::German, 'з') => "s",
        (_, 'з') => "z",
        (CyrillicSystem::German, 'и') if next == Some('й') => "i",
        (_, 'и') => "i",
        (CyrillicSystem::Bgn, 'й') => "y",
        (CyrillicSystem::German, 'й') if previous == Some('и') => "",
        (_, 'й') => "i",
        (_, 'к') => "k",
        (_, 'л') => "l",
        (_, 'м') => "m",
        (_, 'н') => "n",
        (_, 'о') => "o",
        (_, 'п') => "p",
        (_, 'р') => "r",
        (_, 'с') => "s",
        (_, 'т') => "t",
        (_, 'у') => "u",
        (_, 'ф') => "f",
        (CyrillicSystem::German, 'х') => "ch",
        (_, 'х') => "kh",
        (CyrillicSystem::German, 'ц') => "z",
        (_, 'ц') => "ts",
        (CyrillicSystem::German, 'ч') => "tsch",
        (_, 'ч') => "ch",
        (CyrillicSystem::German, 'ш') => "sch",
        (_, 'ш') => "sh",
        (CyrillicSystem::German, 'щ') => "schtsch",
        (_, 'щ') => "shch",
        (CyrillicSystem::Icao, 'ъ') => "ie",
        (_, 'ъ') | (_, 'ь') => "",
        (_, 'ы') => "y",
        (_, 'э') => "e",
        (CyrillicSystem::Icao, 'ю') => "iu",
        (CyrillicSystem::German, 'ю') => "ju",
        (_, 'ю') => "yu",
        (CyrillicSystem::Icao, 'я') => "ia",
        (CyrillicSystem::German, 'я') => "ja",
        (_, 'я') => "ya",
        (_, other) => return other.to_string(),
    };
    text.to_owned()
}

/// Romanises a Cyrillic name (lowercase input) under a system, capitalising each word.
pub fn romanise_cyrillic(name: &str, system: CyrillicSystem) -> String {
    let words: Vec<String> = name
        .split_whitespace()
        .map(|word| {
            let letters: Vec<char> = word.to_lowercase().chars().collect();
            let mut latin = String::new();
            for (index, &letter) in letters.iter().enumerate() {
                let previous = index.checked_sub(1).map(|i| letters[i]);
                let next = letters.get(index + 1).copied();
                latin.push_str(&cyrillic_letter(letter, previous, next, system));
            }
            capitalise(&latin)
        })
        .collect();
    words.join(" ")
}

/// `ivan` -> `Ivan`.
pub fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Russian given names in Cyrillic.
pub const RUSSIAN_GIVEN: [&str; 24] = [
    "евгений",
    "сергей",
    "алексей",
    "дмитрий",
    "андрей",
    "юрий",
    "михаил",
    "николай",
    "владимир",
    "григорий",
    "аркадий",
    "вячеслав",
    "ольга",
    "наталья",
    "юлия",
    "ксения",
    "татьяна",
    "елена",
    "мария",
    "людмила",
    "анастасия",
    "екатерина",
    "виктор",
    "фёдор",
];

/// Russian surnames in Cyrillic (masculine forms).
pub const RUSSIAN_SURNAMES: [&str; 24] = [
    "волков",
    "кузнецов",
    "соколов",
    "попов",
    "лебедев",
    "козлов",
    "новиков",
    "морозов",
    "петров",
    "васильев",
    "зайцев",
    "павлов",
    "семёнов",
    "голубев",
    "виноградов",
    "богданов",
    "воробьёв",
    "фёдоров",
    "михайлов",
    "беляев",
    "тарасов",
    "белов",
    "комаров",
    "орлов",
];

/// Chinese surnames: characters, pinyin, Wade-Giles (or the usual Hong Kong / Taiwan spelling).
pub const CHINESE_SURNAMES: [(&str, &str, &str); 20] = [
    ("张", "Zhang", "Chang"),
    ("王", "Wang", "Wong"),
    ("李", "Li", "Lee"),
    ("刘", "Liu", "Lau"),
    ("陈", "Chen", "Chan"),
    ("杨", "Yang", "Yeung"),
    ("赵", "Zhao", "Chao"),
    ("黄", "Huang", "Wong"),
    ("周", "Zhou", "Chou"),
    ("吴", "Wu", "Ng"),
    ("徐", "Xu", "Hsu"),
    ("孙", "Sun", "Suen"),
    ("朱", "Zhu", "Chu"),
    ("郭", "Guo", "Kuo"),
    ("何", "He", "Ho"),
    ("高", "Gao", "Kao"),
    ("郑", "Zheng", "Cheng"),
    ("谢", "Xie", "Hsieh"),
    ("钱", "Qian", "Chien"),
    ("萧", "Xiao", "Hsiao"),
];

/// Chinese given names: characters, pinyin, Wade-Giles.
pub const CHINESE_GIVEN: [(&str, &str, &str); 12] = [
    ("伟", "Wei", "Wei"),
    ("建国", "Jianguo", "Chien-kuo"),
    ("志强", "Zhiqiang", "Chih-chiang"),
    ("晓明", "Xiaoming", "Hsiao-ming"),
    ("俊", "Jun", "Chun"),
    ("庆", "Qing", "Ching"),
    ("慧", "Hui", "Hui"),
    ("勇", "Yong", "Yung"),
    ("秀英", "Xiuying", "Hsiu-ying"),
    ("丽", "Li", "Li"),
    ("军", "Jun", "Chun"),
    ("洁", "Jie", "Chieh"),
];

/// Tokens with several real Latin spellings, by script, from the Wikidata tables.
#[derive(Debug)]
pub struct VariantTable {
    rows: Vec<(String, Vec<String>)>,
}

impl VariantTable {
    fn parse(text: &str) -> Self {
        let rows = text
            .lines()
            .filter_map(|line| {
                let (native, spellings) = line.split_once('\t')?;
                let spellings: Vec<String> = spellings.split(' ').map(capitalise).collect();
                (!spellings.is_empty()).then(|| (native.to_owned(), spellings))
            })
            .collect();
        VariantTable { rows }
    }

    /// Arabic-script name tokens.
    pub fn arabic() -> Self {
        Self::parse(include_str!("../data/translit_arabic.tsv"))
    }

    /// Chinese-script name tokens.
    pub fn chinese() -> Self {
        Self::parse(include_str!("../data/translit_chinese.tsv"))
    }

    /// Cyrillic-script name tokens.
    pub fn cyrillic() -> Self {
        Self::parse(include_str!("../data/translit_cyrillic.tsv"))
    }

    /// A token with at least two spellings: (native form, spellings).
    pub fn pick_variant(&self, rng: &mut SeededRng) -> (&str, &[String]) {
        let with_variants: Vec<&(String, Vec<String>)> = self
            .rows
            .iter()
            .filter(|(_, spellings)| spellings.len() >= 2)
            .collect();
        let (native, spellings) = if with_variants.is_empty() {
            let row = rng.pick(&self.rows);
            (&row.0, &row.1)
        } else {
            let row = *rng.pick(&with_variants);
            (&row.0, &row.1)
        };
        (native.as_str(), spellings.as_slice())
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_three_systems() {
        let name = "евгений волков";
        assert_eq!(
            romanise_cyrillic(name, CyrillicSystem::Bgn),
            "Yevgeniy Volkov"
        );
        assert_eq!(
            romanise_cyrillic(name, CyrillicSystem::Icao),
            "Evgenii Volkov"
        );
        assert_eq!(
            romanise_cyrillic(name, CyrillicSystem::German),
            "Jewgeni Wolkow"
        );
    }

    #[test]
    fn tables_load_with_variants() {
        for table in [
            VariantTable::arabic(),
            VariantTable::chinese(),
            VariantTable::cyrillic(),
        ] {
            assert!(table.len() > 300);
            let mut rng = SeededRng::new(1);
            let (_, spellings) = table.pick_variant(&mut rng);
            assert!(spellings.len() >= 2);
        }
    }
}
