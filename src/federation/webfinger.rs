//! WebFinger (RFC 7033) and host-meta: `acct:name@host` → the actor. Users and groups share one
//! namespace; the instance actor is `acct:{host}@{host}`. Host and name match case-insensitively,
//! and `resource` may also be the actor's URL.

use std::collections::HashMap;

use super::Urls;

/// What a WebFinger resource names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A local user or group name (lower-case), still to be looked up.
    Name(String),
    Instance,
}

/// Parses `acct:name@host` (also `name@host`, `@name@host`) or a local actor URL. `None` when it
/// names another host or is not a resource we could have.
pub fn parse_resource(resource: &str, host: &str, urls: &Urls) -> Option<Resource> {
    let resource = resource.trim();
    if resource.starts_with("http://") || resource.starts_with("https://") {
        let url = resource.trim_end_matches('/');
        if url.eq_ignore_ascii_case(&urls.instance_actor()) {
            return Some(Resource::Instance);
        }
        let base = urls.base();
        let rest = url
            .get(base.len()..)
            .filter(|_| url[..base.len()].eq_ignore_ascii_case(base))?;
        let name = rest.strip_prefix("/u/").or_else(|| rest.strip_prefix("/g/"))?;
        return valid_name(name).then(|| Resource::Name(name.to_ascii_lowercase()));
    }
    let acct = resource.strip_prefix("acct:").unwrap_or(resource);
    let acct = acct.strip_prefix('@').unwrap_or(acct);
    let (name, their_host) = acct.rsplit_once('@')?;
    if !their_host.eq_ignore_ascii_case(host) {
        return None;
    }
    if name.eq_ignore_ascii_case(host) {
        return Some(Resource::Instance);
    }
    valid_name(name).then(|| Resource::Name(name.to_ascii_lowercase()))
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub use activitypub_federation::fetch::webfinger::{Webfinger, WebfingerLink};

/// The `rel` of the remote-follow ("subscribe") template, as OStatus named it.
pub const SUBSCRIBE_REL: &str = "http://ostatus.org/schema/1.0/subscribe";

fn link(rel: &str, kind: Option<&str>, href: Option<url::Url>, template: Option<String>) -> WebfingerLink {
    WebfingerLink {
        rel: Some(rel.to_owned()),
        kind: kind.map(str::to_owned),
        href,
        template,
        properties: HashMap::new(),
    }
}

/// The answer for an actor: exactly one `self` link of type `application/activity+json`, the
/// profile page, and the template other servers' users are sent to for a remote follow.
pub fn jrd(subject: String, actor_id: &url::Url, profile_page: &url::Url, urls: &Urls) -> Webfinger {
    Webfinger {
        subject,
        aliases: vec![actor_id.clone()],
        links: vec![
            link(
                "self",
                Some(super::negotiate::ACTIVITY_JSON),
                Some(actor_id.clone()),
                None,
            ),
            link(
                "http://webfinger.net/rel/profile-page",
                Some("text/html"),
                Some(profile_page.clone()),
                None,
            ),
            link(
                SUBSCRIBE_REL,
                None,
                None,
                Some(format!("{}/authorize_interaction?uri={{uri}}", urls.base())),
            ),
        ],
        properties: HashMap::new(),
    }
}

/// `/.well-known/host-meta` (XRD), pointing clients to our WebFinger endpoint.
pub fn host_meta_xml(urls: &Urls) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<XRD xmlns=\"http://docs.oasis-open.org/ns/xri/xrd-1.0\">\n  \
         <Link rel=\"lrdd\" template=\"{}/.well-known/webfinger?resource={{uri}}\"/>\n</XRD>\n",
        urls.base()
    )
}

/// Splits `name@host` (also `@name@host`, `acct:name@host`).
fn split_account(account: &str) -> Option<(&str, &str)> {
    let acct = account.trim().trim_start_matches("acct:").trim_start_matches('@');
    let (name, host) = acct.rsplit_once('@')?;
    (!name.is_empty() && !host.is_empty() && !host.contains('/') && !name.contains('/'))
        .then_some((name, host))
}

/// Fetches the WebFinger document of `name@host` from its server. Plain http only in debug
/// mode. Links that cannot be read are skipped, not fatal.
pub async fn fetch(
    client: &super::fetch::FetchClient,
    debug: bool,
    account: &str,
) -> Result<Webfinger, super::remote::Error> {
    let unreadable = |reason: &str| super::remote::Error::Unreadable {
        url: account.to_owned(),
        reason: reason.to_owned(),
    };
    let (name, host) = split_account(account).ok_or_else(|| unreadable("give the account as name@host"))?;
    let scheme = if debug { "http" } else { "https" };
    let mut url = url::Url::parse(&format!("{scheme}://{host}/.well-known/webfinger"))
        .map_err(|_| unreadable("the host is not valid"))?;
    url.query_pairs_mut()
        .append_pair("resource", &format!("acct:{name}@{host}"));
    let jrd = client.get_json(&url, None).await?;
    let links = jrd
        .get("links")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| serde_json::from_value::<WebfingerLink>(l.clone()).ok())
        .collect();
    Ok(Webfinger {
        subject: jrd
            .get("subject")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        links,
        aliases: Vec::new(),
        properties: HashMap::new(),
    })
}

/// The actor id in a WebFinger document: the `self` link with an ActivityPub media type.
pub fn actor_link(jrd: &Webfinger) -> Option<url::Url> {
    jrd.links
        .iter()
        .filter(|l| l.rel.as_deref() == Some("self"))
        .filter(|l| {
            l.kind.as_deref().is_some_and(|t| {
                t.starts_with("application/activity+json") || t.starts_with("application/ld+json")
            })
        })
        .find_map(|l| l.href.clone())
}

/// Looks up `name@host` on its server and returns the actor id from the `self` link.
pub async fn lookup(
    client: &super::fetch::FetchClient,
    debug: bool,
    account: &str,
) -> Result<url::Url, super::remote::Error> {
    let jrd = fetch(client, debug, account).await?;
    actor_link(&jrd).ok_or_else(|| super::remote::Error::Unreadable {
        url: account.to_owned(),
        reason: "the WebFinger answer has no ActivityPub actor link".to_owned(),
    })
}

/// Where to send someone from `account`'s server to follow `target` (an actor URL or handle):
/// that server's subscribe template with `{uri}` filled in.
pub async fn remote_follow_url(
    client: &super::fetch::FetchClient,
    debug: bool,
    account: &str,
    target: &str,
) -> Result<url::Url, super::remote::Error> {
    let jrd = fetch(client, debug, account).await?;
    let template = jrd
        .links
        .iter()
        .find(|l| l.rel.as_deref() == Some(SUBSCRIBE_REL))
        .and_then(|l| l.template.clone())
        .ok_or_else(|| super::remote::Error::Unreadable {
            url: account.to_owned(),
            reason: "that server does not offer remote follows".to_owned(),
        })?;
    let encoded: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    let url = url::Url::parse(&template.replace("{uri}", &encoded)).map_err(|_| {
        super::remote::Error::Unreadable {
            url: account.to_owned(),
            reason: "that server's remote-follow address is not valid".to_owned(),
        }
    })?;
    // Only a web page on the account's own server: never a javascript: or data: URL.
    if !matches!(url.scheme(), "https" | "http") || (url.scheme() == "http" && !debug) {
        return Err(super::remote::Error::Unreadable {
            url: account.to_owned(),
            reason: "that server's remote-follow address is not a web page".to_owned(),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> Urls {
        let mut values = crate::config::RawValues::new();
        values.insert(
            "public_url".into(),
            toml::Value::String("https://agora.example:8443".into()),
        );
        Urls::new(&crate::config::Config::from_values(&values).unwrap())
    }

    #[test]
    fn resources() {
        let (u, host) = (urls(), "agora.example:8443");
        assert_eq!(
            parse_resource("acct:Alice@AGORA.example:8443", host, &u),
            Some(Resource::Name("alice".into()))
        );
        assert_eq!(
            parse_resource("alice@agora.example:8443", host, &u),
            Some(Resource::Name("alice".into()))
        );
        assert_eq!(
            parse_resource("acct:agora.example:8443@agora.example:8443", host, &u),
            Some(Resource::Instance)
        );
        assert_eq!(
            parse_resource("https://agora.example:8443/u/bob", host, &u),
            Some(Resource::Name("bob".into()))
        );
        assert_eq!(
            parse_resource("https://agora.example:8443/g/verkehr", host, &u),
            Some(Resource::Name("verkehr".into()))
        );
        assert_eq!(
            parse_resource("https://agora.example:8443/actor", host, &u),
            Some(Resource::Instance)
        );
        assert_eq!(parse_resource("acct:alice@other.example", host, &u), None);
        assert_eq!(
            parse_resource("acct:alice@agora.example", host, &u),
            None,
            "the port is part of the host"
        );
        assert_eq!(parse_resource("https://other.example/u/alice", host, &u), None);
        assert_eq!(parse_resource("acct:al ice@agora.example:8443", host, &u), None);
        assert_eq!(parse_resource("", host, &u), None);
    }
}
