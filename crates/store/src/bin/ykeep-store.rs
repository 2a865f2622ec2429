//! The embedded store on its own (tests kill and restart it independently of any relay).
//! `ykeep-relay store` is the same thing inside the relay binary; this one needs no relay code.
//!
//! Flags (each also read from the environment): --listen (YKEEP_LISTEN, default 127.0.0.1:8788),
//! --data-dir (YKEEP_DATA_DIR; the store uses <data>/store), --secret (YKEEP_SECRET),
//! --token-key (YKEEP_TOKEN_KEY), --auto-create (YKEEP_AUTO_CREATE),
//! --max-snapshot-bytes (YKEEP_MAX_SNAPSHOT_BYTES). Prints
//! `ykeep-store listening on http://ADDR` on stdout once bound.

use std::io::Write;
use std::path::PathBuf;

use ykeep_store::{EmbeddedStore, StoreConfig};

struct Args {
    listen: String,
    config: StoreConfig,
}

fn parse() -> Result<Args, String> {
    let env = |k: &str| std::env::var(k).ok();
    let mut listen = env("YKEEP_LISTEN").unwrap_or_else(|| "127.0.0.1:8788".into());
    let mut data = env("YKEEP_DATA_DIR").unwrap_or_else(|| "ykeep-data".into());
    let mut secret = env("YKEEP_SECRET");
    let mut token_key = env("YKEEP_TOKEN_KEY");
    let mut auto_create = env("YKEEP_AUTO_CREATE").is_some_and(|v| v == "1" || v == "true");
    let mut max = env("YKEEP_MAX_SNAPSHOT_BYTES");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--data-dir" => data = value()?,
            "--secret" => secret = Some(value()?),
            "--token-key" => token_key = Some(value()?),
            "--max-snapshot-bytes" => max = Some(value()?),
            "--auto-create" => auto_create = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let max_snapshot_bytes = match max {
        Some(m) => m
            .parse()
            .map_err(|_| format!("--max-snapshot-bytes: not a number: {m}"))?,
        None => StoreConfig::DEFAULT_MAX_SNAPSHOT_BYTES,
    };
    Ok(Args {
        listen,
        config: StoreConfig {
            data_dir: PathBuf::from(data).join("store"),
            secret: secret.ok_or("--secret (or YKEEP_SECRET) is required")?,
            token_key: token_key.ok_or("--token-key (or YKEEP_TOKEN_KEY) is required")?,
            auto_create,
            max_snapshot_bytes,
        },
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber_init();
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ykeep-store: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let store = match EmbeddedStore::open(args.config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ykeep-store: cannot open the store: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ykeep-store: cannot listen on {}: {e}", args.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().expect("bound address");
    println!("ykeep-store listening on http://{addr}");
    let _ = std::io::stdout().flush();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, store.standalone_router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("ykeep-store: server error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

fn tracing_subscriber_init() {
    // Logs go to stderr; stdout carries only the listening line.
    let _ = tracing::subscriber::set_global_default(StderrLogger);
}

/// A minimal stderr logger so the store binary does not need tracing-subscriber.
struct StderrLogger;

impl tracing::Subscriber for StderrLogger {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::INFO
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct V(String);
        impl tracing::field::Visit for V {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={:?}", f.name(), v));
            }
        }
        let mut v = V(String::new());
        event.record(&mut v);
        eprintln!(
            "{} {}{}",
            event.metadata().level(),
            event.metadata().target(),
            v.0
        );
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
