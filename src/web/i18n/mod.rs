//! Translations (German default, English) from Fluent files in this folder, and locale-aware
//! formatting of dates and numbers.
//!
//! The files use a subset of Fluent syntax: `key = text`, indented continuation lines, `#`
//! comments, and `{ $name }` placeables. Anything else is refused by the parser, and a unit test
//! fails when a key exists in one language only, so a missing translation cannot ship.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDateTime, Timelike};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    De,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::De, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Self::De => "de",
            Self::En => "en",
        }
    }

    /// `de`, `de-AT`, `EN_us` … → a supported language.
    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "de" => Some(Self::De),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The language's own name, for language pickers.
    pub fn native_name(self) -> &'static str {
        match self {
            Self::De => "Deutsch",
            Self::En => "English",
        }
    }
}

/// The messages of one language.
#[derive(Debug, Default)]
pub struct Catalog {
    messages: BTreeMap<String, String>,
}

impl Catalog {
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut messages = BTreeMap::new();
        let mut current: Option<String> = None;
        for (n, line) in source.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                current = None;
                continue;
            }
            if line.starts_with(' ') {
                let Some(key) = &current else {
                    return Err(format!("line {}: indented text outside a message", n + 1));
                };
                if let Some(text) = messages.get_mut(key) {
                    let text: &mut String = text;
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(line.trim());
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("line {}: expected `key = text`", n + 1));
            };
            let key = key.trim();
            let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(format!("line {}: `{key}` is not a valid message id", n + 1));
            }
            if messages.insert(key.to_owned(), value.trim().to_owned()).is_some() {
                return Err(format!("line {}: `{key}` is defined twice", n + 1));
            }
            current = Some(key.to_owned());
        }
        Ok(Self { messages })
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.messages.get(key).map(String::as_str)
    }
}

static CATALOGS: LazyLock<[Catalog; 2]> = LazyLock::new(|| {
    let load = |name: &str, src: &str| {
        Catalog::parse(src).unwrap_or_else(|e| {
            // The unit tests parse both files, so this only happens to a hand-patched binary.
            tracing::error!("translation file {name} is invalid: {e}");
            Catalog::default()
        })
    };
    [
        load("de.ftl", include_str!("de.ftl")),
        load("en.ftl", include_str!("en.ftl")),
    ]
});

pub fn catalog(lang: Lang) -> &'static Catalog {
    match lang {
        Lang::De => &CATALOGS[0],
        Lang::En => &CATALOGS[1],
    }
}

/// The message `key` in `lang` with `{ $name }` placeables filled from `args`. A missing key shows
/// the key itself (tests keep that from happening).
/// Whether `key` has a translation.
pub fn has(lang: Lang, key: &str) -> bool {
    catalog(lang).get(key).is_some()
}

pub fn translate(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let Some(text) = catalog(lang).get(key) else {
        return key.to_owned();
    };
    if args.is_empty() || !text.contains('{') {
        return text.to_owned();
    }
    let mut out = text.to_owned();
    for (name, value) in args {
        for pattern in [format!("{{ ${name} }}"), format!("{{${name}}}")] {
            out = out.replace(&pattern, value);
        }
    }
    out
}

/// Picks the language: the user's setting, then the `agora_lang` cookie (anonymous visitors'
/// choice), then `Accept-Language` by quality, then German.
pub fn negotiate(user: Option<&str>, cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
    if let Some(lang) = user
        .and_then(Lang::parse)
        .or_else(|| cookie.and_then(Lang::parse))
    {
        return lang;
    }
    let Some(header) = accept_language else {
        return Lang::De;
    };
    let mut best: Option<(f32, usize, Lang)> = None;
    for (i, part) in header.split(',').enumerate() {
        let mut pieces = part.split(';');
        let Some(lang) = pieces.next().and_then(Lang::parse) else {
            continue;
        };
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        // Higher quality wins; on equal quality the earlier entry wins.
        if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
            best = Some((q, i, lang));
        }
    }
    best.map_or(Lang::De, |(_, _, l)| l)
}

/// "3. Dezember 2026, 14:05 UTC" / "3 December 2026, 14:05 UTC" (in UTC, said so, until users
/// can choose a time zone).
pub fn format_datetime(lang: Lang, dt: NaiveDateTime) -> String {
    let month = translate(lang, &format!("month-{}", dt.month()), &[]);
    match lang {
        Lang::De => format!(
            "{}. {month} {}, {:02}:{:02} UTC",
            dt.day(),
            dt.year(),
            dt.hour(),
            dt.minute()
        ),
        Lang::En => format!(
            "{} {month} {}, {:02}:{:02} UTC",
            dt.day(),
            dt.year(),
            dt.hour(),
            dt.minute()
        ),
    }
}

/// "1.234.567" / "1,234,567".
pub fn format_number(lang: Lang, n: i64) -> String {
    let sep = match lang {
        Lang::De => '.',
        Lang::En => ',',
    };
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys() {
        let de = Catalog::parse(include_str!("de.ftl")).unwrap();
        let en = Catalog::parse(include_str!("en.ftl")).unwrap();
        let de_keys: Vec<&str> = de.keys().collect();
        let en_keys: Vec<&str> = en.keys().collect();
        let only_de: Vec<_> = de_keys.iter().filter(|k| en.get(k).is_none()).collect();
        let only_en: Vec<_> = en_keys.iter().filter(|k| de.get(k).is_none()).collect();
        assert!(
            only_de.is_empty() && only_en.is_empty(),
            "only in de: {only_de:?}; only in en: {only_en:?}"
        );
        for key in de_keys {
            assert!(
                !de.get(key).unwrap_or_default().is_empty(),
                "empty German text for {key}"
            );
            assert!(
                !en.get(key).unwrap_or_default().is_empty(),
                "empty English text for {key}"
            );
        }
    }

    /// Every key used in a template (`page.t("…")`) or named in code (`"error-…"`, `"invalid-…"`)
    /// exists.
    #[test]
    fn every_used_key_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut missing = Vec::new();
        visit(&root, &mut |path, text| {
            // Template calls, and key literals passed around in code.
            for marker in [".t(\"", ".t1(\"", ".tn(\"", "\"error-", "\"invalid-"] {
                for (i, _) in text.match_indices(marker) {
                    let start = if marker.starts_with('.') {
                        i + marker.len()
                    } else {
                        i + 1
                    };
                    let rest = &text[start..];
                    let Some(end) = rest.find('"') else { continue };
                    let key = &rest[..end];
                    if key.ends_with('-') || key.contains(' ') {
                        continue;
                    }
                    if key.contains('{') || key.is_empty() {
                        continue;
                    }
                    if catalog(Lang::De).get(key).is_none() {
                        missing.push(format!("{}: {key}", path.display()));
                    }
                }
            }
        });
        assert!(missing.is_empty(), "keys without a translation: {missing:#?}");
    }

    fn visit(dir: &std::path::Path, f: &mut dyn FnMut(&std::path::Path, &str)) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                visit(&p, f);
            } else if p.extension().is_some_and(|e| e == "html" || e == "rs") && !p.ends_with("i18n/mod.rs") {
                f(&p, &std::fs::read_to_string(&p).unwrap());
            }
        }
    }

    #[test]
    fn parser_is_strict() {
        assert!(Catalog::parse("a = b\n  more\n").unwrap().get("a") == Some("b\nmore"));
        assert!(Catalog::parse("a = b\na = c\n").is_err());
        assert!(Catalog::parse("-term = x\n").is_err());
        assert!(Catalog::parse("  orphan\n").is_err());
        assert!(Catalog::parse("no equals sign\n").is_err());
    }

    #[test]
    fn placeables_are_filled() {
        assert_eq!(
            translate(Lang::En, "missing-key-for-test", &[]),
            "missing-key-for-test"
        );
        let c = Catalog::parse("hello = Hallo { $name }!\n").unwrap();
        assert_eq!(c.get("hello"), Some("Hallo { $name }!"));
    }

    #[test]
    fn negotiation_order() {
        assert_eq!(negotiate(None, None, None), Lang::De);
        assert_eq!(negotiate(None, None, Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(negotiate(None, None, Some("fr-FR, en;q=0.5, de;q=0.8")), Lang::De);
        assert_eq!(negotiate(None, None, Some("fr, it")), Lang::De);
        assert_eq!(negotiate(None, None, Some("en;q=0, de;q=0.1")), Lang::De);
        assert_eq!(
            negotiate(None, Some("en"), Some("de")),
            Lang::En,
            "cookie beats the header"
        );
        assert_eq!(
            negotiate(Some("de"), Some("en"), Some("en")),
            Lang::De,
            "the user's setting wins"
        );
        assert_eq!(negotiate(Some("xx"), None, Some("en")), Lang::En);
    }

    #[test]
    fn dates_and_numbers_per_locale() {
        let dt = chrono::NaiveDate::from_ymd_opt(2026, 12, 3)
            .unwrap()
            .and_hms_opt(14, 5, 0)
            .unwrap();
        assert_eq!(format_datetime(Lang::De, dt), "3. Dezember 2026, 14:05 UTC");
        assert_eq!(format_datetime(Lang::En, dt), "3 December 2026, 14:05 UTC");
        assert_eq!(format_number(Lang::De, 1_234_567), "1.234.567");
        assert_eq!(format_number(Lang::En, -1234), "-1,234");
        assert_eq!(format_number(Lang::En, 999), "999");
    }
}
