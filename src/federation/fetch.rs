//! The one HTTP client for fetching remote ActivityPub documents. Every fetch is bounded: 10 s
//! in total, 1 MiB of body, at most 3 redirects, each checked again. Outside debug mode only
//! https on the default port, and no loopback, private or link-local addresses — checked on the
//! URL and again by the resolver when connecting, so DNS rebinding cannot reach the inside.
//! Domains the policy refuses (blocked, or not allowed in allowlist mode) are never contacted. GETs are signed by the instance
//! actor, because secure-mode Mastodon and GoToSocial refuse unsigned fetches.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;
use url::Url;

use super::policy::DomainPolicy;
use super::signatures;

pub const MAX_BODY: usize = 1024 * 1024;
pub const MAX_REDIRECTS: usize = 3;
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// A delivery POST: the receiver may process the activity before answering (Mastodon does not,
/// Lemmy does); 10 s is what Lemmy allows for that.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{url} is refused: {reason}")]
    Refused { url: String, reason: &'static str },
    #[error("{0} answered 410 Gone")]
    Gone(String),
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent {content_type}, not an ActivityPub document")]
    ContentType { url: String, content_type: String },
    #[error("{0} sent more than 1 MiB")]
    TooLarge(String),
    #[error("{0} redirected more than 3 times")]
    TooManyRedirects(String),
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("fetching {url} failed: {reason}")]
    Network { url: String, reason: String },
    #[error("{0} is not valid JSON")]
    Json(String),
}

/// Addresses that are not on the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The URL rules before any connection is made.
pub fn check_url(url: &Url, debug: bool, policy: &DomainPolicy) -> Result<(), FetchError> {
    let refuse = |reason| {
        Err(FetchError::Refused {
            url: url.to_string(),
            reason,
        })
    };
    let Some(host) = url.host_str() else {
        return refuse("it has no host");
    };
    if let Some(reason) = policy.refusal(host) {
        return refuse(reason);
    }
    match url.scheme() {
        "https" => {}
        "http" if debug => {}
        _ => return refuse("only https is allowed"),
    }
    if !debug {
        if url.port().is_some() {
            return refuse("explicit ports are not allowed");
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(is_private) || host.eq_ignore_ascii_case("localhost") {
            return refuse("it points to a private or loopback address");
        }
    }
    Ok(())
}

/// Resolves names and, outside debug mode, drops private addresses at connect time.
struct GuardedResolver {
    debug: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let debug = self.debug;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| debug || !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err("the name resolves only to private addresses".into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Who signs our GETs.
#[derive(Debug, Clone)]
pub struct Signer {
    pub key_id: String,
    pub private_key_pem: String,
}

/// A parsed key for signing deliveries (parsing once per owner, not once per request).
#[derive(Clone)]
pub struct SigningKey {
    pub key_id: String,
    pub pair: Arc<aws_lc_rs::rsa::KeyPair>,
}

/// What an inbox answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostAnswer {
    pub status: u16,
    pub retry_after: Option<chrono::TimeDelta>,
}

#[derive(Clone)]
pub struct FetchClient {
    client: reqwest::Client,
    debug: bool,
    /// Replaced by [`FetchClient::set_policy`] when run-time blocks or allows change.
    policy: Arc<std::sync::RwLock<DomainPolicy>>,
}

impl FetchClient {
    pub fn new(config: &crate::config::Config) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            // Redirects are followed by hand so each hop passes check_url.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                debug: config.federation.debug,
            }))
            .user_agent(format!(
                "Agora/{} (+{})",
                env!("CARGO_PKG_VERSION"),
                config.base_url()
            ))
            .build()
            .map_err(|e| FetchError::Network {
                url: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            client,
            debug: config.federation.debug,
            // Until the database has been read: the config's lists (an allowlist refuses all else).
            policy: Arc::new(std::sync::RwLock::new(DomainPolicy {
                blocked: config.federation.blocked_domains.clone(),
                allowed: config
                    .federation
                    .allowlist_only
                    .then(|| config.federation.allowed_domains.clone()),
            })),
        })
    }

    /// The domain policy every later request is checked against.
    pub fn set_policy(&self, policy: DomainPolicy) {
        if let Ok(mut p) = self.policy.write() {
            *p = policy;
        }
    }

    fn policy(&self) -> DomainPolicy {
        self.policy.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Fetches an ActivityPub document, signed by `signer`.
    pub async fn get_json(&self, url: &Url, signer: Option<&Signer>) -> Result<Value, FetchError> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            check_url(&url, self.debug, &self.policy())?;
            let response = self.send(&url, signer).await?;
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| FetchError::Status {
                        url: url.to_string(),
                        status: status.as_u16(),
                    })?;
                url = next;
                continue;
            }
            if status == reqwest::StatusCode::GONE {
                return Err(FetchError::Gone(url.to_string()));
            }
            if !status.is_success() {
                return Err(FetchError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            let ok_type = [
                "application/activity+json",
                "application/ld+json",
                "application/json",
                "application/jrd+json",
            ]
            .iter()
            .any(|t| content_type.starts_with(t));
            if !ok_type {
                return Err(FetchError::ContentType {
                    url: url.to_string(),
                    content_type,
                });
            }
            let body = read_limited(response, &url).await?;
            return serde_json::from_slice(&body).map_err(|_| FetchError::Json(url.to_string()));
        }
        Err(FetchError::TooManyRedirects(url.to_string()))
    }

    /// Delivers an activity: a signed POST (`(request-target) host date digest`). Returns the
    /// HTTP status; the caller decides what is final. Redirects are not followed for POSTs.
    pub async fn post_activity(
        &self,
        inbox: &Url,
        body: &[u8],
        signer: &SigningKey,
    ) -> Result<PostAnswer, FetchError> {
        check_url(inbox, self.debug, &self.policy())?;
        let host = match inbox.port() {
            Some(p) => format!("{}:{p}", inbox.host_str().unwrap_or_default()),
            None => inbox.host_str().unwrap_or_default().to_owned(),
        };
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let digest = signatures::digest_header(body);
        let target = match inbox.query() {
            Some(q) => format!("{}?{q}", inbox.path()),
            None => inbox.path().to_owned(),
        };
        let signature = signatures::sign_with(
            &signer.pair,
            &signer.key_id,
            "POST",
            &target,
            &[
                ("host", host.as_str()),
                ("date", date.as_str()),
                ("digest", digest.as_str()),
            ],
        )
        .map_err(|e| FetchError::Network {
            url: inbox.to_string(),
            reason: e.to_string(),
        })?;
        let response = self
            .client
            .post(inbox.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/activity+json")
            .header("date", date)
            .header("digest", digest)
            .header("signature", signature)
            .body(body.to_vec())
            .timeout(DELIVERY_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    FetchError::Timeout(inbox.to_string())
                } else {
                    FetchError::Network {
                        url: inbox.to_string(),
                        reason: one_line(&e),
                    }
                }
            })?;
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| super::delivery::parse_retry_after(v, chrono::Utc::now()));
        Ok(PostAnswer {
            status: response.status().as_u16(),
            retry_after,
        })
    }

    async fn send(&self, url: &Url, signer: Option<&Signer>) -> Result<reqwest::Response, FetchError> {
        let mut request = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/activity+json, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"");
        if let Some(signer) = signer {
            let host = match url.port() {
                Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_owned(),
            };
            let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            let target = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            let signature = signatures::sign(
                &signer.private_key_pem,
                &signer.key_id,
                "GET",
                &target,
                &[("host", host.as_str()), ("date", date.as_str())],
            )
            .map_err(|e| FetchError::Network {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
            request = request.header("date", date).header("signature", signature);
        }
        request.send().await.map_err(|e| {
            if e.is_timeout() {
                FetchError::Timeout(url.to_string())
            } else {
                FetchError::Network {
                    url: url.to_string(),
                    reason: one_line(&e),
                }
            }
        })
    }
}

fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn read_limited(mut response: reqwest::Response, url: &Url) -> Result<Vec<u8>, FetchError> {
    if response.content_length().is_some_and(|l| l > MAX_BODY as u64) {
        return Err(FetchError::TooLarge(url.to_string()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Network {
        url: url.to_string(),
        reason: one_line(&e),
    })? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(FetchError::TooLarge(url.to_string()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2a00:1450:4001::1", "8.8.8.8"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    /// The connect-time check: a name that resolves to loopback is refused outside debug mode,
    /// whatever the URL looked like (DNS rebinding).
    #[tokio::test]
    async fn resolver_drops_private_addresses() {
        let strict = GuardedResolver { debug: false };
        assert!(strict.resolve("localhost".parse().unwrap()).await.is_err());
        let debug = GuardedResolver { debug: true };
        let addrs: Vec<_> = debug
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[test]
    fn url_rules() {
        let u = |s: &str| Url::parse(s).unwrap();
        let blocked = DomainPolicy {
            blocked: vec!["spam.example".to_owned()],
            allowed: None,
        };
        assert!(check_url(&u("https://social.example/u/a"), false, &blocked).is_ok());
        assert!(check_url(&u("http://social.example/u/a"), false, &blocked).is_err());
        assert!(check_url(&u("https://social.example:8443/u/a"), false, &blocked).is_err());
        assert!(check_url(&u("https://127.0.0.1/u/a"), false, &blocked).is_err());
        assert!(check_url(&u("https://[::1]/u/a"), false, &blocked).is_err());
        assert!(check_url(&u("https://localhost/u/a"), false, &blocked).is_err());
        assert!(
            check_url(&u("https://bad.spam.example/u/a"), true, &blocked).is_err(),
            "blocked even in debug"
        );
        assert!(check_url(&u("http://127.0.0.1:8080/u/a"), true, &blocked).is_ok());
        assert!(check_url(&u("ftp://social.example/x"), true, &blocked).is_err());
    }
}
