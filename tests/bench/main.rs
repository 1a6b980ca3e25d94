//! The benchmark suite of issue 6: a real `agora serve` (release build) on SQLite or PostgreSQL,
//! a stub fediverse of many virtual instances on their own loopback addresses, and scenarios
//! a–f. Results are printed as a table, as ratios to this machine's raw RSA rates measured in the
//! same run, and (outside `--quick`) recorded in docs/performance.md with the exact command.
//!
//! `cargo bench --bench agora-bench -- <a|b|c|d|e|f|all>[,…] [--db sqlite|postgres|both] [--quick]`

mod crypto;
mod datagen;
mod fanout;
mod ingest;
mod load;
mod reads;
mod report;
mod server;
mod startup;
mod stub;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};

use report::Row;
use server::Backend;

/// What one run was asked to do.
#[derive(Debug, Clone)]
pub struct Args {
    pub scenarios: Vec<char>,
    pub backends: Vec<Backend>,
    pub quick: bool,
    /// Do not touch docs/performance.md.
    pub no_docs: bool,
    /// The command line as typed (for docs/performance.md).
    pub command: String,
}

const USAGE: &str = "usage: cargo bench --bench agora-bench -- <a|b|c|d|e|f|all>[,…] [--db sqlite|postgres|both] [--quick] [--no-docs]";

fn parse_args() -> anyhow::Result<Args> {
    let mut scenarios = Vec::new();
    let mut backends = None;
    let mut quick = false;
    let mut no_docs = false;
    let mut shown = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            // cargo bench passes --bench to every bench target.
            "--bench" => continue,
            "--quick" => quick = true,
            "--no-docs" => no_docs = true,
            "--db" => {
                let v = it.next().context(USAGE)?;
                backends = Some(match v.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" | "pg" => vec![Backend::Postgres],
                    "both" | "all" => vec![Backend::Sqlite, Backend::Postgres],
                    _ => bail!("unknown database {v:?}; {USAGE}"),
                });
                shown.push(format!("--db {v}"));
                continue;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            s if s.starts_with('-') => bail!("unknown option {s}; {USAGE}"),
            s => {
                for part in s.split(',') {
                    match part {
                        "all" => scenarios.extend(['a', 'b', 'c', 'd', 'e', 'f']),
                        p if p.len() == 1 && "abcdef".contains(p) => {
                            scenarios.extend(p.chars());
                        }
                        p => bail!("unknown scenario {p:?}; {USAGE}"),
                    }
                }
            }
        }
        shown.push(a);
    }
    if scenarios.is_empty() {
        bail!("no scenario given; {USAGE}");
    }
    scenarios.sort_unstable();
    scenarios.dedup();
    let command = format!("cargo bench --bench agora-bench -- {}", shown.join(" "));
    Ok(Args {
        scenarios,
        backends: backends.unwrap_or_else(|| vec![Backend::Sqlite]),
        quick,
        no_docs,
        command,
    })
}

/// What every scenario needs: the binary, the caches, the raw crypto rates and the results.
pub struct Ctx {
    pub args: Args,
    pub agora: PathBuf,
    pub cache: PathBuf,
    pub crypto: crypto::Rates,
    pub keys: std::sync::Arc<Vec<crypto::PoolKey>>,
    pub rows: Vec<Row>,
}

impl Ctx {
    pub fn quick(&self) -> bool {
        self.args.quick
    }

    pub fn push(&mut self, row: Row) {
        println!("  {}", row.one_line(&self.crypto));
        self.rows.push(row);
    }
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agora-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    let target = server::target_dir()?;
    let cache =
        std::env::var_os("AGORA_BENCH_CACHE").map_or_else(|| target.join("agora-bench-cache"), PathBuf::from);
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    // Many virtual instances mean many sockets, here and in the server (which inherits it).
    server::raise_fd_limit();
    let agora = server::agora_binary(&target, args.quick)?;
    eprintln!("agora-bench: server binary {}", agora.display());
    let crypto = crypto::Rates::measure(args.quick);
    println!(
        "raw RSA-2048 (aws-lc-rs, one core): sign {:.0}/s, verify {:.0}/s",
        crypto.sign, crypto.verify
    );
    let keys = std::sync::Arc::new(crypto::key_pool(&cache, if args.quick { 4 } else { 64 })?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let mut ctx = Ctx {
        args: args.clone(),
        agora,
        cache,
        crypto,
        keys,
        rows: Vec::new(),
    };
    runtime.block_on(async {
        for &s in &args.scenarios {
            // b reports the memory figures of e as well: one fan-out for both.
            if s == 'e' && args.scenarios.contains(&'b') {
                continue;
            }
            for b in args.backends.clone() {
                if b == Backend::Postgres && !server::pg_available() {
                    if args.quick && std::env::var("CI").is_err() {
                        eprintln!("SKIP: PostgreSQL is not reachable; scenario {s} runs on SQLite only");
                        continue;
                    }
                    bail!("PostgreSQL is not reachable at {}", server::pg_admin_url());
                }
                println!("== scenario {s} on {} ==", b.name());
                let t = Instant::now();
                match s {
                    'a' => ingest::run(&mut ctx, b).await,
                    'b' => fanout::run(&mut ctx, b, false).await,
                    'e' => fanout::run(&mut ctx, b, true).await,
                    'c' => reads::thread_pages(&mut ctx, b).await,
                    'd' => reads::lists(&mut ctx, b).await,
                    'f' => startup::run(&mut ctx, b).await,
                    _ => Ok(()),
                }
                .with_context(|| format!("scenario {s} on {}", b.name()))?;
                println!("   ({:.1} s)", t.elapsed().as_secs_f64());
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    println!();
    print!("{}", report::table(&ctx.rows, &ctx.crypto));
    report::ratios_between_backends(&ctx.rows);
    if !ctx.args.quick && !ctx.args.no_docs {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/performance.md");
        report::write_docs(&path, &ctx.args.command, &ctx.crypto, &ctx.rows)?;
        println!("recorded in {}", path.display());
    }
    let failed: Vec<&Row> = ctx.rows.iter().filter(|r| r.broken.is_some()).collect();
    if !failed.is_empty() {
        for r in &failed {
            eprintln!(
                "agora-bench: {} {}: {}",
                r.scenario,
                r.case,
                r.broken.as_deref().unwrap_or("")
            );
        }
        bail!("{} correctness check(s) failed", failed.len());
    }
    println!("agora-bench finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
