//! Validation of the instance settings an admin edits.

use super::InstanceSettings;
use super::keys;
use crate::config::Registration;
use crate::db::{DbConn, settings, write_tx};

/// Field-level problems, keyed by form field, as translation keys.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<(&'static str, &'static str)>);

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&'static str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, k)| *k)
    }
}

/// The settings form as submitted.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub imprint: String,
    #[serde(default)]
    pub privacy: String,
    #[serde(default)]
    pub registration: String,
    #[serde(default)]
    pub accent_color: String,
    /// Checkbox: present ("on") when ticked.
    #[serde(default)]
    pub official_site: Option<String>,
}

/// `#rrggbb` → (r, g, b).
pub fn parse_hex_color(s: &str) -> Option<(u8, u8, u8)> {
    let hex = s.trim().strip_prefix('#')?;
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

/// WCAG 2.1 contrast ratio between two colours.
pub fn contrast_ratio(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
    fn channel(c: u8) -> f64 {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }
    fn luminance((r, g, b): (u8, u8, u8)) -> f64 {
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// Checks the form; on success returns the settings to store.
pub fn validate(form: &SettingsForm) -> Result<Vec<(&'static str, String)>, Problems> {
    let mut problems = Problems::default();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        problems.0.push(("name", "invalid-instance-name"));
    }
    if form.description.chars().count() > 500 {
        problems.0.push(("description", "invalid-instance-description"));
    }
    for (field, text) in [("imprint", &form.imprint), ("privacy", &form.privacy)] {
        if text.chars().count() > 20_000 {
            problems.0.push((field, "invalid-legal-text"));
        }
    }
    let registration = match form.registration.as_str() {
        "closed" => Registration::Closed,
        "approval" => Registration::Approval,
        "open" => Registration::Open,
        _ => {
            problems.0.push(("registration", "invalid-registration"));
            Registration::Closed
        }
    };
    let accent = form.accent_color.trim();
    if !accent.is_empty() {
        match parse_hex_color(accent) {
            None => problems.0.push(("accent_color", "invalid-accent-format")),
            // Primary buttons put white text on the accent colour: it must meet AA (4.5:1).
            Some(rgb) if contrast_ratio(rgb, (255, 255, 255)) < 4.5 => {
                problems.0.push(("accent_color", "invalid-accent-contrast"));
            }
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(vec![
        (keys::NAME, clean(name)),
        (keys::DESCRIPTION, clean(&form.description)),
        (keys::IMPRINT, clean(&form.imprint)),
        (keys::PRIVACY, clean(&form.privacy)),
        (keys::REGISTRATION, registration.as_str().to_owned()),
        (keys::ACCENT_COLOR, accent.to_ascii_lowercase()),
        (keys::OFFICIAL_SITE, form.official_site.is_some().to_string()),
    ])
}

/// Trimmed, with Windows line ends normalised and control characters other than newlines and
/// tabs removed (PostgreSQL refuses NUL in text).
fn clean(text: &str) -> String {
    text.trim()
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// Stores validated settings in one transaction. A value equal to what the config file (or the
/// environment) gives is removed rather than stored, so that field keeps following the config.
pub fn save(
    conn: &mut DbConn,
    values: &[(&'static str, String)],
    config: &InstanceSettings,
) -> Result<(), crate::db::Error> {
    write_tx(conn, |conn| {
        for (key, value) in values {
            let from_config = match *key {
                keys::NAME => config.name.clone(),
                keys::DESCRIPTION => config.description.clone(),
                keys::REGISTRATION => config.registration.as_str().to_owned(),
                keys::OFFICIAL_SITE => config.official_site.to_string(),
                _ => String::new(),
            };
            if *value == from_config {
                settings::remove(conn, key)?;
            } else {
                settings::put(conn, key, value)?;
            }
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// The form pre-filled with the current settings.
pub fn form_from(s: &InstanceSettings) -> SettingsForm {
    SettingsForm {
        name: s.name.clone(),
        description: s.description.clone(),
        imprint: s.imprint.clone(),
        privacy: s.privacy.clone(),
        registration: s.registration.as_str().to_owned(),
        accent_color: s.accent_color.clone().unwrap_or_default(),
        official_site: s.official_site.then(|| "on".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_contrast() {
        assert_eq!(parse_hex_color("#8a1538"), Some((0x8a, 0x15, 0x38)));
        assert_eq!(parse_hex_color("8a1538"), None);
        assert_eq!(parse_hex_color("#8a15"), None);
        assert_eq!(parse_hex_color("#zz1538"), None);
        assert!((contrast_ratio((0, 0, 0), (255, 255, 255)) - 21.0).abs() < 0.01);
        assert!(contrast_ratio((0x8a, 0x15, 0x38), (255, 255, 255)) > 4.5);
        assert!(contrast_ratio((0xff, 0xdd, 0x00), (255, 255, 255)) < 4.5);
    }

    #[test]
    fn validation_names_each_bad_field() {
        let form = SettingsForm {
            name: " ".into(),
            registration: "sometimes".into(),
            accent_color: "#ffdd00".into(),
            ..SettingsForm::default()
        };
        let p = validate(&form).unwrap_err();
        assert_eq!(p.get("name"), Some("invalid-instance-name"));
        assert_eq!(p.get("registration"), Some("invalid-registration"));
        assert_eq!(p.get("accent_color"), Some("invalid-accent-contrast"));
        let ok = SettingsForm {
            name: "Stadt".into(),
            registration: "open".into(),
            ..SettingsForm::default()
        };
        let values = validate(&ok).unwrap();
        assert!(values.contains(&(keys::REGISTRATION, "open".to_owned())));
        assert!(values.contains(&(keys::OFFICIAL_SITE, "false".to_owned())));
    }
}
