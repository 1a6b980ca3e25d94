//! Tolerant reading of remote ActivityPub documents into our types.
//!
//! Servers disagree about shapes: `to`, `cc`, `tag`, `attachment`, `url`, `icon` may be one value
//! or an array, references may be a URL or an embedded object, `@context` may be missing,
//! `content` may only exist as `contentMap`, `publicKey` may be an array. Reading goes through
//! `serde_json::Value` with small helpers, so an unexpected shape skips one field instead of
//! failing the whole document; a document is refused only with a stated reason. All remote text
//! passes through [`super::html`].

use serde_json::Value;
use url::Url;

use super::html;

pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

const ACTOR_TYPES: &[&str] = &["Person", "Group", "Application", "Service", "Organization"];
const OBJECT_TYPES: &[&str] = &[
    "Note",
    "Article",
    "Page",
    "Question",
    "Video",
    "Audio",
    "Image",
    "Event",
    "Document",
    "ChatMessage",
    "Tombstone",
];
const ACTIVITY_TYPES: &[&str] = &[
    "Create",
    "Update",
    "Delete",
    "Follow",
    "Accept",
    "Reject",
    "TentativeAccept",
    "Undo",
    "Like",
    "Dislike",
    "Announce",
    "Add",
    "Remove",
    "Flag",
    "Block",
    "Move",
    "EmojiReact",
    "Join",
    "Leave",
    "Invite",
    "Lock",
    "Read",
    "View",
];
const COLLECTION_TYPES: &[&str] = &[
    "Collection",
    "OrderedCollection",
    "CollectionPage",
    "OrderedCollectionPage",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub id: String,
    pub owner: Option<Url>,
    pub pem: String,
}

#[derive(Debug, Clone)]
pub struct RemoteActor {
    pub id: Url,
    pub kind: String,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    pub summary: Option<String>,
    /// Where to deliver to; an actor without one can author content but receives nothing.
    pub inbox: Option<Url>,
    pub shared_inbox: Option<Url>,
    pub outbox: Option<Url>,
    pub followers: Option<Url>,
    pub url: Option<Url>,
    pub icon: Option<Url>,
    pub keys: Vec<PublicKey>,
    pub manually_approves_followers: bool,
}

impl RemoteActor {
    /// The key a signature names (`keyId`); falls back to the only key when there is one.
    pub fn key(&self, key_id: &str) -> Option<&PublicKey> {
        self.keys
            .iter()
            .find(|k| k.id == key_id)
            .or(match self.keys.as_slice() {
                [only] => Some(only),
                _ => None,
            })
    }
}

#[derive(Debug, Clone)]
pub struct RemoteObject {
    pub id: Url,
    pub kind: String,
    pub attributed_to: Vec<Url>,
    pub name: Option<String>,
    pub content: Option<String>,
    pub summary: Option<String>,
    pub source_markdown: Option<String>,
    pub in_reply_to: Option<Url>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub audience: Option<Url>,
    pub context: Option<Url>,
    pub url: Option<Url>,
    pub mentions: Vec<Url>,
    pub hashtags: Vec<String>,
    pub published: Option<String>,
    pub updated: Option<String>,
    pub sensitive: bool,
}

impl RemoteObject {
    pub fn is_public(&self) -> bool {
        is_public(&self.to) || is_public(&self.cc)
    }
}

#[derive(Debug, Clone)]
pub struct RemoteActivity {
    /// Some servers send activities without an id (GoToSocial's Delete); those are deduplicated
    /// by a hash of their body instead.
    pub id: Option<Url>,
    pub kind: String,
    pub actor: Url,
    /// The object: a reference, or the embedded document (read again with [`parse`]).
    pub object: Option<Value>,
    pub object_id: Option<Url>,
    pub target: Option<Url>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CollectionInfo {
    pub id: Option<Url>,
    pub kind: String,
    pub total_items: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum Document {
    Actor(RemoteActor),
    Object(RemoteObject),
    Activity(RemoteActivity),
    Collection(CollectionInfo),
}

impl Document {
    pub fn kind(&self) -> &str {
        match self {
            Self::Actor(a) => &a.kind,
            Self::Object(o) => &o.kind,
            Self::Activity(a) => &a.kind,
            Self::Collection(c) => &c.kind,
        }
    }
}

/// Whether `Public` is addressed, in any of its three spellings.
pub fn is_public(addresses: &[String]) -> bool {
    addresses
        .iter()
        .any(|a| a == PUBLIC || a == "as:Public" || a == "Public")
}

/// One value or an array, as a list.
fn many(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}

/// A URL given as a string, or as an object's `id` / `href` (Link).
fn url_of(v: &Value) -> Option<Url> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("id").or_else(|| o.get("href")).and_then(Value::as_str)?,
        _ => return None,
    };
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

fn first_url(v: Option<&Value>) -> Option<Url> {
    many(v).into_iter().find_map(url_of)
}

fn urls(v: Option<&Value>) -> Vec<Url> {
    many(v).into_iter().filter_map(url_of).collect()
}

fn addresses(v: Option<&Value>) -> Vec<String> {
    many(v)
        .into_iter()
        .filter_map(|a| match a {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .collect()
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

/// `content`, else the first entry of `contentMap` (same for `name`/`nameMap`, `summary`).
fn localized(doc: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    text(doc.get(key)).or_else(|| {
        doc.get(&format!("{key}Map"))
            .and_then(Value::as_object)
            .and_then(|m| m.values().find_map(Value::as_str))
            .map(str::to_owned)
    })
}

/// The ActivityStreams type: a string or an array (the first known one wins), `as:` prefix tolerated.
fn kind_of(doc: &serde_json::Map<String, Value>) -> Option<String> {
    let known = |t: &str| {
        let t = t.strip_prefix("as:").unwrap_or(t);
        [ACTOR_TYPES, OBJECT_TYPES, ACTIVITY_TYPES, COLLECTION_TYPES]
            .iter()
            .any(|set| set.contains(&t))
            .then(|| t.to_owned())
    };
    match doc.get("type")? {
        Value::String(t) => Some(known(t).unwrap_or_else(|| t.clone())),
        Value::Array(ts) => {
            let names: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
            names
                .iter()
                .find_map(|t| known(t))
                .or_else(|| names.first().map(|t| (*t).to_owned()))
        }
        _ => None,
    }
}

/// Reads a remote document. `Err` carries the reason it is refused.
pub fn parse(value: &Value) -> Result<Document, String> {
    let Some(doc) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    if doc.contains_key("@type")
        || doc
            .keys()
            .any(|k| k.starts_with("https://www.w3.org/ns/activitystreams#"))
    {
        return Err("expanded JSON-LD (no compacted ActivityStreams terms) is not supported".into());
    }
    let Some(kind) = kind_of(doc) else {
        return Err(if doc.contains_key("subject") && doc.contains_key("links") {
            "a WebFinger document, not an ActivityStreams object".into()
        } else if doc.contains_key("links") || doc.contains_key("software") {
            "a NodeInfo document, not an ActivityStreams object".into()
        } else {
            "no `type`".into()
        });
    };
    if ACTOR_TYPES.contains(&kind.as_str()) {
        actor(doc, kind).map(Document::Actor)
    } else if OBJECT_TYPES.contains(&kind.as_str()) {
        object(doc, kind).map(Document::Object)
    } else if ACTIVITY_TYPES.contains(&kind.as_str()) {
        activity(doc, kind).map(Document::Activity)
    } else if COLLECTION_TYPES.contains(&kind.as_str()) {
        Ok(Document::Collection(CollectionInfo {
            id: first_url(doc.get("id")),
            kind,
            total_items: doc.get("totalItems").and_then(Value::as_u64),
        }))
    } else {
        Err(format!("the type {kind} is not one we handle"))
    }
}

fn required_id(doc: &serde_json::Map<String, Value>) -> Result<Url, String> {
    first_url(doc.get("id")).ok_or_else(|| "no http(s) `id`".to_owned())
}

fn actor(doc: &serde_json::Map<String, Value>, kind: String) -> Result<RemoteActor, String> {
    let id = required_id(doc)?;
    let inbox = first_url(doc.get("inbox"));
    let keys = many(doc.get("publicKey"))
        .into_iter()
        .filter_map(|k| {
            let k = k.as_object()?;
            Some(PublicKey {
                id: text(k.get("id"))?,
                owner: first_url(k.get("owner")),
                pem: text(k.get("publicKeyPem"))?,
            })
        })
        .collect();
    Ok(RemoteActor {
        kind,
        preferred_username: text(doc.get("preferredUsername")).map(|n| html::plain(&n)),
        name: localized(doc, "name").map(|n| html::plain(&n)),
        summary: localized(doc, "summary").map(|s| html::sanitize(&s)),
        shared_inbox: doc.get("endpoints").and_then(|e| first_url(e.get("sharedInbox"))),
        outbox: first_url(doc.get("outbox")),
        followers: first_url(doc.get("followers")),
        url: first_url(doc.get("url")),
        icon: many(doc.get("icon"))
            .into_iter()
            .find_map(|i| i.get("url").and_then(url_of).or_else(|| url_of(i))),
        manually_approves_followers: doc
            .get("manuallyApprovesFollowers")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        keys,
        inbox,
        id,
    })
}

fn object(doc: &serde_json::Map<String, Value>, kind: String) -> Result<RemoteObject, String> {
    let id = required_id(doc)?;
    let tags = many(doc.get("tag"));
    let tag_type = |t: &Value| t.get("type").and_then(Value::as_str).map(str::to_owned);
    Ok(RemoteObject {
        attributed_to: urls(doc.get("attributedTo")),
        name: localized(doc, "name").map(|n| html::plain(&n)),
        content: localized(doc, "content").map(|c| html::sanitize(&c)),
        summary: localized(doc, "summary").map(|s| html::sanitize(&s)),
        source_markdown: doc
            .get("source")
            .and_then(Value::as_object)
            .filter(|s| {
                s.get("mediaType")
                    .and_then(Value::as_str)
                    .is_some_and(|m| m.contains("markdown"))
            })
            .and_then(|s| text(s.get("content"))),
        in_reply_to: first_url(doc.get("inReplyTo")),
        to: addresses(doc.get("to")),
        cc: addresses(doc.get("cc")),
        audience: first_url(doc.get("audience")),
        context: first_url(doc.get("context")),
        url: first_url(doc.get("url")),
        // Tags of unknown type (Emoji, PropertyValue, …) are skipped, not fatal.
        mentions: tags
            .iter()
            .filter(|t| tag_type(t).as_deref() == Some("Mention"))
            .filter_map(|t| t.get("href").and_then(url_of))
            .collect(),
        hashtags: tags
            .iter()
            .filter(|t| tag_type(t).as_deref() == Some("Hashtag"))
            .filter_map(|t| text(t.get("name")))
            .map(|n| html::plain(n.trim_start_matches('#')))
            .collect(),
        published: text(doc.get("published")),
        updated: text(doc.get("updated")),
        sensitive: doc.get("sensitive").and_then(Value::as_bool).unwrap_or(false),
        kind,
        id,
    })
}

fn activity(doc: &serde_json::Map<String, Value>, kind: String) -> Result<RemoteActivity, String> {
    let id = first_url(doc.get("id"));
    let actor = first_url(doc.get("actor")).ok_or("an activity without an `actor`")?;
    let object = doc.get("object").filter(|o| !o.is_null()).cloned();
    Ok(RemoteActivity {
        object_id: object.as_ref().and_then(url_of),
        object,
        target: first_url(doc.get("target")),
        to: addresses(doc.get("to")),
        cc: addresses(doc.get("cc")),
        kind,
        actor,
        id,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn shapes_are_tolerated() {
        let doc = serde_json::json!({
            "type": ["Note"], "id": "https://a.example/n/1", "attributedTo": [{"id": "https://a.example/u/x"}],
            "contentMap": {"de": "<p>Hallo<script>x</script></p>"}, "to": "as:Public",
            "tag": [{"type": "Emoji", "name": ":x:"}, {"type": "Hashtag", "name": "#Verkehr"}, {"type": "Mention", "href": "https://b.example/u/y"}]
        });
        let Document::Object(o) = parse(&doc).unwrap() else {
            panic!("object")
        };
        assert_eq!(o.content.as_deref(), Some("<p>Hallo</p>"));
        assert!(o.is_public());
        assert_eq!(o.hashtags, ["Verkehr"]);
        assert_eq!(o.mentions.len(), 1);
        assert_eq!(o.attributed_to[0].as_str(), "https://a.example/u/x");
        assert!(parse(&serde_json::json!({"type": "Note"})).is_err());
        assert!(parse(&serde_json::json!([1])).is_err());
    }

    /// Every document in ../shared/fixtures/activitypub is read or refused with a reason; the
    /// table says which.
    #[test]
    fn fixture_corpus() {
        let root = crate::federation::shared_fixtures().join("activitypub");
        let mut files = Vec::new();
        for dir in std::fs::read_dir(&root).unwrap().flatten() {
            if dir.path().is_dir() {
                for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
                    if f.path().extension().is_some_and(|e| e == "json") {
                        files.push(f.path());
                    }
                }
            }
        }
        files.sort();
        assert_eq!(files.len(), 200, "the corpus has 200 documents");
        let mut table = Vec::new();
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        for path in &files {
            let name = path.strip_prefix(&root).unwrap().display().to_string();
            let text = std::fs::read_to_string(path).unwrap();
            let outcome = match serde_json::from_str::<Value>(&text) {
                Err(e) => Err(format!("not JSON: {e}")),
                Ok(v) => parse(&v),
            };
            let row = match &outcome {
                Ok(doc) => {
                    let class = match doc {
                        Document::Actor(_) => "actor",
                        Document::Object(_) => "object",
                        Document::Activity(_) => "activity",
                        Document::Collection(_) => "collection",
                    };
                    *tally.entry(format!("accepted {class}")).or_default() += 1;
                    format!("{name:<55} accepted  {class} {}", doc.kind())
                }
                Err(reason) => {
                    assert!(!reason.is_empty());
                    *tally.entry("refused".into()).or_default() += 1;
                    format!("{name:<55} refused   {reason}")
                }
            };
            table.push(row);
            // Whatever was read, nothing unsanitised came through.
            if let Ok(Document::Object(o)) = &outcome {
                for html in [&o.content, &o.summary].into_iter().flatten() {
                    assert!(!html.contains("<script") && !html.contains("onerror"), "{name}");
                }
            }
            // What a file is named for is what it reads as.
            let file = path.file_name().unwrap().to_string_lossy();
            if file.starts_with("person") || file.starts_with("group") || file.starts_with("service") {
                assert!(
                    matches!(outcome, Ok(Document::Actor(_))) || name.contains("expanded"),
                    "{name}: {outcome:?}"
                );
            }
            if [
                "create-", "follow", "undo-", "like-", "announce", "accept", "delete", "update-",
            ]
            .iter()
            .any(|p| file.starts_with(p))
            {
                assert!(
                    matches!(outcome, Ok(Document::Activity(_))),
                    "{name}: {outcome:?}"
                );
            }
        }
        println!("{}\n{tally:#?}", table.join("\n"));
        let accepted: usize = tally
            .iter()
            .filter(|(k, _)| k.starts_with("accepted"))
            .map(|(_, v)| v)
            .sum();
        assert!(accepted >= 180, "most real documents are read: {tally:?}");
    }
}
