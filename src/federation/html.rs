//! Remote HTML is never trusted: every `content`, `name` and `summary` from another server passes
//! through this ammonia allow-list (close to what Mastodon keeps) before it is stored or shown.

use std::collections::HashSet;
use std::sync::LazyLock;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::empty();
    b.add_tags([
        "p",
        "br",
        "a",
        "span",
        "em",
        "i",
        "strong",
        "b",
        "del",
        "s",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
    ])
    // Classes are filtered by allowed_classes below (ammonia refuses "class" in both).
    .add_tag_attributes("a", ["href"])
    .add_tag_attributes("ol", ["start", "reversed"])
    .url_schemes(HashSet::from(["http", "https", "mailto"]))
    .link_rel(Some("nofollow noopener noreferrer"))
    .allowed_classes(
        [
            ("a", vec!["mention", "hashtag", "u-url", "status-link"]),
            ("span", vec!["h-card", "invisible", "ellipsis"]),
        ]
        .into_iter()
        .map(|(tag, classes)| (tag, classes.into_iter().collect()))
        .collect(),
    )
    .strip_comments(true);
    b
});

/// Sanitised HTML for storing and showing.
pub fn sanitize(html: &str) -> String {
    CLEANER.clean(html).to_string()
}

/// Plain text (names, titles): HTML tags removed, entities decoded by the sanitiser's escaping
/// rules, whitespace collapsed.
pub fn plain(text: &str) -> String {
    let stripped = ammonia::Builder::empty().clean(text).to_string();
    let decoded = stripped
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_markup_is_removed() {
        let dirty = "<p onclick=\"x()\">Hi <script>alert(1)</script><a href=\"javascript:alert(1)\">x</a> \
                     <a href=\"https://ok.example\" class=\"mention evil\">@a</a><img src=x onerror=y><style>p{}</style></p>";
        let clean = sanitize(dirty);
        for bad in [
            "script",
            "onclick",
            "javascript:",
            "<img",
            "onerror",
            "<style",
            "evil",
        ] {
            assert!(!clean.contains(bad), "{bad} in {clean}");
        }
        assert!(clean.contains("href=\"https://ok.example\""));
        assert!(clean.contains("rel=\"nofollow noopener noreferrer\""));
        assert!(clean.contains("class=\"mention\""));
    }

    #[test]
    fn plain_text_has_no_tags() {
        assert_eq!(plain("<b>Stadt</b>  &amp; <i>Land</i>"), "Stadt & Land");
        assert_eq!(plain("<script>x</script>Hallo"), "Hallo");
    }
}
