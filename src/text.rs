//! Text that people write: Markdown to HTML (pulldown-cmark), with `@mentions` and `#hashtags`
//! turned into links, and the result always passed through the same ammonia allow-list as remote
//! HTML ([`crate::federation::html::sanitize`]). Code spans, code blocks and existing links are
//! left alone. Mention names are ASCII only, so a look-alike letter (Cyrillic "а" in "@аlice")
//! never resolves to someone else.

use std::collections::HashMap;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// A mention as written: `@name` (local) or `@name@host`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mention {
    pub name: String,
    pub host: Option<String>,
}

impl Mention {
    /// `@name` or `@name@host`, lower-case.
    pub fn handle(&self) -> String {
        match &self.host {
            Some(h) => format!("@{}@{}", self.name, h),
            None => format!("@{}", self.name),
        }
    }
}

/// Rendered Markdown and what it mentions and tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub html: String,
    /// Hashtags, lower-case, without '#', in order of first use.
    pub hashtags: Vec<String>,
}

/// Unicode bidirectional controls, which can make text display differently from what it is.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

fn options() -> Options {
    Options::ENABLE_STRIKETHROUGH
}

/// A token found in plain text.
enum Token<'a> {
    Text(&'a str),
    Mention(Mention, &'a str),
    Hashtag(String, &'a str),
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// Splits plain text into text, mentions and hashtags. A token starts at the beginning or after
/// a character that cannot be part of a word or address (so e-mail addresses and URL fragments
/// are not mistaken for mentions or tags).
fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut last = 0;
    let mut chars = text.char_indices().peekable();
    let mut prev: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        let boundary = prev
            .is_none_or(|p| !(p.is_alphanumeric() || matches!(p, '_' | '@' | '#' | '/' | '&' | '.' | '-')));
        prev = Some(c);
        if !boundary || (c != '@' && c != '#') {
            continue;
        }
        let rest = &text[i + 1..];
        if c == '@' {
            let name_len = rest.find(|ch: char| !is_name_char(ch)).unwrap_or(rest.len());
            let name = rest[..name_len].trim_end_matches(['.', '-']);
            if name.is_empty() || !name.starts_with(|ch: char| ch.is_ascii_alphanumeric() || ch == '_') {
                continue;
            }
            let mut end = i + 1 + name.len();
            let mut host = None;
            if text[end..].starts_with('@') {
                let after = &text[end + 1..];
                let host_len = after
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '.' || ch == '-' || ch == ':'))
                    .unwrap_or(after.len());
                let h = after[..host_len].trim_end_matches(['.', '-', ':']);
                if h.contains('.') || h.contains(':') {
                    host = Some(h.to_ascii_lowercase());
                    end += 1 + h.len();
                }
            }
            // A following non-ASCII letter means the name was cut short: not a mention.
            if text[end..].starts_with(|ch: char| ch.is_alphanumeric()) {
                continue;
            }
            out.push(Token::Text(&text[last..i]));
            out.push(Token::Mention(
                Mention {
                    name: name.to_ascii_lowercase(),
                    host,
                },
                &text[i..end],
            ));
            last = end;
            while chars.peek().is_some_and(|(j, _)| *j < end) {
                chars.next();
            }
            prev = text[..end].chars().next_back();
        } else {
            let len = rest
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            let tag = &rest[..len];
            if !tag.chars().any(char::is_alphabetic) || tag.chars().count() > 100 {
                continue;
            }
            let end = i + 1 + len;
            out.push(Token::Text(&text[last..i]));
            out.push(Token::Hashtag(tag.to_lowercase(), &text[i..end]));
            last = end;
            while chars.peek().is_some_and(|(j, _)| *j < end) {
                chars.next();
            }
            prev = text[..end].chars().next_back();
        }
    }
    out.push(Token::Text(&text[last..]));
    out
}

/// The mentions in Markdown source (outside code and links), each once.
pub fn mentions(source: &str) -> Vec<Mention> {
    let mut found = Vec::new();
    walk(source, |t| {
        if let Token::Mention(m, _) = t
            && !found.contains(m)
        {
            found.push(m.clone());
        }
    });
    found
}

fn walk(source: &str, mut f: impl FnMut(&Token<'_>)) {
    let mut in_code = 0usize;
    let mut in_link = 0usize;
    for event in Parser::new_ext(source, options()) {
        match &event {
            Event::Start(Tag::CodeBlock(_)) => in_code += 1,
            Event::End(TagEnd::CodeBlock) => in_code = in_code.saturating_sub(1),
            Event::Start(Tag::Link { .. }) => in_link += 1,
            Event::End(TagEnd::Link) => in_link = in_link.saturating_sub(1),
            Event::Text(t) if in_code == 0 && in_link == 0 => tokens(t).iter().for_each(&mut f),
            _ => {}
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders Markdown without resolving mentions (they stay text). For summaries and previews.
pub fn render_markdown(source: &str) -> Rendered {
    render(source, &HashMap::new(), "")
}

/// Renders Markdown. `resolved` maps a mention's [`Mention::handle`] to its actor's profile URL;
/// unresolved mentions stay plain text. Hashtags link to `{base}/tags/{tag}`.
pub fn render(source: &str, resolved: &HashMap<String, String>, base: &str) -> Rendered {
    let mut hashtags: Vec<String> = Vec::new();
    let mut in_code = 0usize;
    let mut in_link = 0usize;
    let mut events: Vec<Event<'_>> = Vec::new();
    for event in Parser::new_ext(source, options()) {
        match &event {
            Event::Start(Tag::CodeBlock(_)) => in_code += 1,
            Event::End(TagEnd::CodeBlock) => in_code = in_code.saturating_sub(1),
            Event::Start(Tag::Link { .. }) => in_link += 1,
            Event::End(TagEnd::Link) => in_link = in_link.saturating_sub(1),
            _ => {}
        }
        let Event::Text(text) = &event else {
            events.push(event);
            continue;
        };
        if in_code > 0 || in_link > 0 {
            events.push(event);
            continue;
        }
        for token in tokens(text) {
            match token {
                Token::Text(t) if !t.is_empty() => events.push(Event::Text(CowStr::from(t.to_owned()))),
                Token::Text(_) => {}
                Token::Mention(m, raw) => match resolved.get(&m.handle()) {
                    Some(url) => events.push(Event::InlineHtml(CowStr::from(format!(
                        "<span class=\"h-card\"><a href=\"{}\" class=\"u-url mention\">{}</a></span>",
                        escape(url),
                        escape(raw)
                    )))),
                    None => events.push(Event::Text(CowStr::from(raw.to_owned()))),
                },
                Token::Hashtag(tag, raw) => {
                    if !hashtags.contains(&tag) {
                        hashtags.push(tag.clone());
                    }
                    let href: String = url::form_urlencoded::byte_serialize(tag.as_bytes()).collect();
                    events.push(Event::InlineHtml(CowStr::from(format!(
                        "<a href=\"{}/tags/{href}\" class=\"mention hashtag\">{}</a>",
                        escape(base),
                        escape(raw)
                    ))));
                }
            }
        }
    }
    let mut out = String::new();
    html::push_html(&mut out, events.into_iter());
    Rendered {
        html: crate::federation::html::sanitize(&out),
        hashtags,
    }
}

/// The first line of plain text of some HTML, for titles made from remote posts.
pub fn first_line(html: &str, max: usize) -> String {
    let blocks = html
        .replace("<br />", "</p>")
        .replace("<br/>", "</p>")
        .replace("<br>", "</p>");
    blocks
        .split("</p>")
        .map(crate::federation::html::plain)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_sanitised() {
        let r =
            render_markdown("**fett** und _kursiv_\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))");
        assert!(r.html.contains("<strong>fett</strong>"), "{}", r.html);
        assert!(r.html.contains("<em>kursiv</em>"));
        assert!(
            !r.html.contains("<script") && !r.html.contains("javascript:"),
            "{}",
            r.html
        );
        let r =
            render_markdown("<img src=x onerror=alert(1)> <a href=\"data:text/html,x\" onclick=\"y\">l</a>");
        assert!(
            !r.html.contains("onerror") && !r.html.contains("onclick") && !r.html.contains("data:"),
            "{}",
            r.html
        );
        let r = render_markdown("[ok](https://example.org)");
        assert!(
            r.html.contains("rel=\"nofollow noopener noreferrer\""),
            "{}",
            r.html
        );
    }

    #[test]
    fn hashtags_need_a_letter_and_skip_code() {
        let r = render(
            "Zum #Radverkehr und #2030, `#code`, a#b",
            &HashMap::new(),
            "https://a.example",
        );
        assert_eq!(r.hashtags, ["radverkehr"]);
        assert!(
            r.html.contains("<a href=\"https://a.example/tags/radverkehr\" class=\"mention hashtag\" rel=\"nofollow noopener noreferrer\">#Radverkehr</a>"),
            "{}",
            r.html
        );
        assert!(r.html.contains("#2030") && r.html.contains("<code>#code</code>"));
        assert_eq!(render_markdown("#Straße").hashtags, ["straße"]);
    }

    #[test]
    fn mentions() {
        let found =
            super::mentions("Hallo @Alice und @bob@Social.Example, mail a@b.example, `@code`, @аlice");
        assert_eq!(
            found,
            [
                Mention {
                    name: "alice".into(),
                    host: None
                },
                Mention {
                    name: "bob".into(),
                    host: Some("social.example".into())
                },
            ]
        );
        let resolved = HashMap::from([("@alice".to_owned(), "https://a.example/u/alice".to_owned())]);
        let r = render("Hallo @Alice und @carol", &resolved, "https://a.example");
        assert!(
            r.html.contains("<span class=\"h-card\"><a href=\"https://a.example/u/alice\" class=\"u-url mention\" rel=\"nofollow noopener noreferrer\">@Alice</a></span>"),
            "{}",
            r.html
        );
        assert!(r.html.contains("@carol") && !r.html.contains("carol</a>"));
        assert_eq!(
            super::mentions("@bob@localhost:8080 hi")[0].host.as_deref(),
            Some("localhost:8080")
        );
        assert_eq!(super::mentions("(@alice)")[0].name, "alice");
        assert!(super::mentions("user@alice").is_empty());
    }

    #[test]
    fn first_lines() {
        assert_eq!(
            first_line("<p>@group Neue Idee</p><p>Text</p>", 50),
            "@group Neue Idee"
        );
        assert_eq!(first_line("<p></p><p>x</p>", 50), "x");
    }
}
