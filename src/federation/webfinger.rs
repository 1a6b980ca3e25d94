//! WebFinger (RFC 7033) and host-meta: `acct:name@host` → the actor. Users and groups share one
//! namespace; the instance actor is `acct:{host}@{host}`. Host and name match case-insensitively,
//! and `resource` may also be the actor's URL.

use serde::Serialize;

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

#[derive(Debug, Serialize)]
pub struct Link {
    pub rel: &'static str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// The JRD document.
#[derive(Debug, Serialize)]
pub struct Jrd {
    pub subject: String,
    pub aliases: Vec<String>,
    pub links: Vec<Link>,
}

/// The answer for an actor: exactly one `self` link of type `application/activity+json`, plus
/// the profile page.
pub fn jrd(subject: String, actor_id: String, profile_page: String) -> Jrd {
    Jrd {
        subject,
        aliases: vec![actor_id.clone()],
        links: vec![
            Link {
                rel: "self",
                kind: Some(super::negotiate::ACTIVITY_JSON),
                href: Some(actor_id),
                template: None,
            },
            Link {
                rel: "http://webfinger.net/rel/profile-page",
                kind: Some("text/html"),
                href: Some(profile_page),
                template: None,
            },
        ],
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

/// Looks up `name@host` (also `@name@host`, `acct:name@host`) on its server and returns the
/// actor id from the `self` link. Plain http only in debug mode.
pub async fn lookup(
    client: &super::fetch::FetchClient,
    debug: bool,
    account: &str,
) -> Result<url::Url, super::remote::Error> {
    let acct = account.trim().trim_start_matches("acct:").trim_start_matches('@');
    let unreadable = |reason: &str| super::remote::Error::Unreadable {
        url: account.to_owned(),
        reason: reason.to_owned(),
    };
    let (name, host) = acct
        .rsplit_once('@')
        .ok_or_else(|| unreadable("give the account as name@host"))?;
    if name.is_empty() || host.is_empty() || host.contains('/') {
        return Err(unreadable("give the account as name@host"));
    }
    let scheme = if debug { "http" } else { "https" };
    let mut url = url::Url::parse(&format!("{scheme}://{host}/.well-known/webfinger"))
        .map_err(|_| unreadable("the host is not valid"))?;
    url.query_pairs_mut()
        .append_pair("resource", &format!("acct:{name}@{host}"));
    let jrd = client.get_json(&url, None).await?;
    jrd.get("links")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter(|l| l.get("rel").and_then(serde_json::Value::as_str) == Some("self"))
        .filter(|l| {
            l.get("type")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|t| {
                    t.starts_with("application/activity+json") || t.starts_with("application/ld+json")
                })
        })
        .find_map(|l| {
            l.get("href")
                .and_then(serde_json::Value::as_str)
                .and_then(|h| url::Url::parse(h).ok())
        })
        .ok_or_else(|| unreadable("the WebFinger answer has no ActivityPub actor link"))
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
