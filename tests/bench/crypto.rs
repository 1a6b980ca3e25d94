//! The machine's raw RSA-2048 rates with aws-lc-rs (what Agora signs and verifies with, see
//! src/federation/keys.rs), one core; and the pool of synthetic actors' keys, cached on disk
//! because generating one takes ~150 ms.

use std::path::Path;
use std::time::{Duration, Instant};

use agora::federation::{keys, signatures};
use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};

#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Signatures per second on one core.
    pub sign: f64,
    /// Verifications per second on one core.
    pub verify: f64,
}

impl Rates {
    pub fn measure(quick: bool) -> Self {
        let run_for = Duration::from_millis(if quick { 100 } else { 1500 });
        let Ok((_, private)) = keys::generate() else {
            return Self {
                sign: f64::NAN,
                verify: f64::NAN,
            };
        };
        let Ok(pair) = signatures::parse_private_key(&private) else {
            return Self {
                sign: f64::NAN,
                verify: f64::NAN,
            };
        };
        // A signing string of the size Agora signs: (request-target), host, date, digest.
        let message = b"(request-target): post /inbox\nhost: social.example.org\ndate: Fri, 04 Dec 2026 10:00:00 GMT\ndigest: SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let rng = SystemRandom::new();
        let mut sig = vec![0u8; pair.public_modulus_len()];
        let sign = rate(run_for, || {
            let _ = pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig);
        });
        let public = UnparsedPublicKey::new(
            &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            pair.public_key().as_ref().to_vec(),
        );
        if public.verify(message, &sig).is_err() {
            return Self {
                sign,
                verify: f64::NAN,
            };
        }
        let verify = rate(run_for, || {
            let _ = public.verify(message, &sig);
        });
        Self { sign, verify }
    }
}

fn rate(run_for: Duration, mut f: impl FnMut()) -> f64 {
    // Warm up, then count whole batches until the time is up.
    for _ in 0..20 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < run_for {
        for _ in 0..50 {
            f();
        }
        n += 50;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// One synthetic actors' key: the public SPKI PEM and the parsed private key.
pub struct PoolKey {
    pub public_pem: String,
    pub pair: KeyPair,
}

/// At least `n` keys from `cache/keys-v1.json`, generating (and saving) the missing ones.
pub fn key_pool(cache: &Path, n: usize) -> anyhow::Result<Vec<PoolKey>> {
    let path = cache.join("keys-v1.json");
    let mut pems: Vec<(String, String)> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if pems.len() < n {
        eprintln!(
            "agora-bench: generating {} RSA-2048 keys for the key pool (cached in {})",
            n - pems.len(),
            path.display()
        );
        while pems.len() < n {
            pems.push(keys::generate().map_err(|e| anyhow::anyhow!("key generation: {e}"))?);
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&pems)?)?;
        std::fs::rename(&tmp, &path)?;
    }
    pems.into_iter()
        .take(n)
        .map(|(public_pem, private)| {
            let pair =
                signatures::parse_private_key(&private).map_err(|e| anyhow::anyhow!("cached key: {e}"))?;
            Ok(PoolKey { public_pem, pair })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .context("the key pool")
}
