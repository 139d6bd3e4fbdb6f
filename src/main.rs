//! The `lokal` binary: flags (Loki's `-flag.name=value` spelling and
//! `--flag`), configuration, logging, and the server.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;

const USAGE: &str = "\
lokal: a single-node log store that speaks Grafana Loki's HTTP API

Usage: lokal [-config.file=FILE] [-config.expand-env=true] [-flag.name=value ...]

Without a config file lokal runs with an embedded default: single tenant
(auth disabled), data under ./data, listening on 127.0.0.1:3100.

Options:
  -config.file=FILE          Loki-style YAML configuration (also --config FILE)
  -config.expand-env=true    expand ${VAR} and ${VAR:-default} in the file
  -print-config-stderr       print the effective configuration at start-up
  -version                   print the version and exit
  -help                      this help

Loki flags that override the file:
";

struct Args {
    config_file: Option<PathBuf>,
    expand_env: bool,
    print_config: bool,
    flags: Vec<(String, String)>,
}

/// Parses Loki's flag style: `-name=value`, `-name value`, `--name=value`,
/// booleans without a value.
fn parse_args(raw: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut args = Args {
        config_file: None,
        expand_env: false,
        print_config: false,
        flags: Vec::new(),
    };
    let mut it = raw.peekable();
    while let Some(a) = it.next() {
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            anyhow::bail!("unexpected argument {a:?} (flags look like -config.file=FILE)");
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        let boolean = matches!(
            name.as_str(),
            "config.expand-env" | "print-config-stderr" | "version" | "help" | "h"
        );
        let value = match inline {
            Some(v) => v,
            None if boolean => "true".to_string(),
            None => it
                .next()
                .with_context(|| format!("flag -{name} needs a value"))?,
        };
        match name.as_str() {
            "config.file" | "config" => args.config_file = Some(PathBuf::from(value)),
            "config.expand-env" => {
                args.expand_env = value
                    .parse()
                    .context("-config.expand-env takes true or false")?
            }
            "print-config-stderr" => args.print_config = value.parse().unwrap_or(true),
            "version" => {
                println!("lokal, version {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "help" | "h" => {
                print!("{USAGE}");
                for f in lokal::config::known_flags() {
                    println!("  -{f}=...");
                }
                return Ok(None);
            }
            _ => args.flags.push((name, value)),
        }
    }
    Ok(Some(args))
}

fn main() -> anyhow::Result<()> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        return Ok(());
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let loaded = lokal::config::Config::load_file(
        args.config_file.as_deref(),
        args.flags,
        args.expand_env,
        env,
    )
    .context("loading configuration")?;
    let config = loaded.config;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOKAL_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("lokal={},warn", config.server.log_level))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    if !loaded.ignored.is_empty() {
        tracing::warn!(keys = ?loaded.ignored, "configuration keys lokal does not use were ignored");
    }
    if args.print_config {
        eprintln!("{}", config.to_yaml());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lokal")
        .build()?;
    runtime
        .block_on(lokal::server::run(config))
        .context("lokal stopped")?;
    Ok(())
}
