//! `ykeep-relay`: serve (relay + embedded store), relay, store, token.

use std::io::Write;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use ykeep_relay::config::{Cli, Command, Config, QuarantineAction, QuarantineArgs};
use ykeep_relay::store_client::{HttpStore, LocalStore};
use ykeep_relay::{Relay, RelayError};

mod embedded;

fn main() -> std::process::ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    limit_malloc_arenas();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("YKEEP_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ykeep-relay: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(args.config(), args.demo).await,
            Command::Relay(args) => relay(args.config()).await,
            Command::Store(args) => embedded::store_only(args.config()).await,
            Command::Token(args) => embedded::print_token(args),
            Command::Quarantine(args) => quarantine(args),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ykeep-relay stopped");
            eprintln!("ykeep-relay: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates an arena of its own, up to 8 per core, and the
/// relay's rooms are opened and woken on the blocking pool's threads: memory freed there stays
/// spread over many arenas. One arena per core: an idle room 13.3 -> 12.8 KB of RSS (2,000
/// rooms, `scripts/bench relay --idle 2000 --idle-wait-s 40`; jemalloc was 13.6, mimalloc 36.7),
/// with the flood's CPU per update unchanged. `MALLOC_ARENA_MAX` in the environment wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cores = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt sets one of the allocator's tunables; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, cores);
    }
}

/// Binds, prints the one line test harnesses wait for, and returns the listener.
pub(crate) async fn bind(config: &Config) -> Result<tokio::net::TcpListener, RelayError> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let mut out = std::io::stdout();
    writeln!(out, "ykeep-relay listening on http://{addr}")?;
    out.flush()?;
    Ok(listener)
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal: closing the listener");
}

async fn relay(config: Config) -> Result<(), RelayError> {
    let url = config
        .store_url
        .clone()
        .ok_or_else(|| RelayError::Config("relay needs --store-url (YKEEP_STORE_URL)".into()))?;
    let secret = config
        .secret
        .clone()
        .ok_or_else(|| RelayError::Config("relay needs --secret (YKEEP_SECRET)".into()))?;
    let store = HttpStore::new(&url, &secret, config.store_timeout())
        .map_err(|e| RelayError::Config(e.to_string()))?;
    check_store(&store).await?;
    let listener = bind(&config).await?;
    let relay = Relay::open(config, Arc::new(store)).await?;
    run(relay, listener, axum::Router::new()).await
}

/// `GET /contract` before serving: a wrong URL, a wrong secret or something that is not a
/// ykeep store stops the relay here, before any room could save to it. A store that is only
/// unreachable is a warning: the relay serves from its log and saves once the store is back.
async fn check_store(store: &HttpStore) -> Result<(), RelayError> {
    match store.check_contract().await {
        Ok(info) => {
            tracing::info!(url = store.base_url(), contract = info.contract, store = %info.store,
                "store checked");
            Ok(())
        }
        Err(e) if e.is_unreachable() => {
            tracing::warn!(error = %e,
                "the store is unreachable at start-up: serving from the local log; saves wait \
                 until it answers");
            Ok(())
        }
        Err(e) => Err(RelayError::Config(format!("refusing to start: {e}"))),
    }
}

/// `ykeep-relay quarantine list | export ID --out FILE`.
fn quarantine(args: QuarantineArgs) -> Result<(), RelayError> {
    let relay_dir = args.data_dir.join("relay");
    match args.action {
        QuarantineAction::List => {
            let entries = ykeep_relay::quarantine::list(&relay_dir)?;
            ykeep_relay::quarantine::write_list(&entries, &mut std::io::stdout().lock())?;
        }
        QuarantineAction::Export { id, out } => {
            let exported = ykeep_relay::quarantine::export_to(&relay_dir, id, &out)?;
            eprintln!(
                "exported {} (quarantine id {id}): {} bytes of Yjs v1 update to {}{}",
                exported.entry.room,
                exported.update.len(),
                out.display(),
                match exported.unreadable {
                    0 => String::new(),
                    n => format!("; {n} records could not be read and are not in it"),
                }
            );
        }
    }
    Ok(())
}

async fn serve(mut config: Config, demo: bool) -> Result<(), RelayError> {
    if demo {
        config.dev_allow_all = true;
        config.auto_create = true;
        tracing::warn!(
            "DEMO MODE: every client may edit every room, resources are created on first save. \
             Not for production."
        );
        if config.secret.is_none() {
            config.secret = Some(embedded::random_secret());
        }
        if config.token_key.is_none() {
            config.token_key = Some(embedded::random_secret());
        }
    }
    if config.secret.is_none() {
        return Err(RelayError::Config(
            "serve needs --secret (YKEEP_SECRET)".into(),
        ));
    }
    if config.token_key.is_none() && !config.dev_allow_all {
        return Err(RelayError::Config(
            "serve needs --token-key (YKEEP_TOKEN_KEY) unless --dev-allow-all".into(),
        ));
    }
    let store = embedded::open_store(&config).await?;
    let listener = bind(&config).await?;
    let mut extra = store.router();
    if demo {
        let key = config
            .token_key
            .clone()
            .expect("demo mode sets a token key");
        extra = extra.merge(embedded::demo_token_router(key));
    }
    if let Some(dir) = &config.static_dir {
        extra = extra.fallback_service(tower_http::services::ServeDir::new(dir));
    }
    // The relay saves to the store in process: no HTTP, and no dependence on the listener
    // (the shutdown flush runs after it has stopped).
    let relay = Relay::open(config, Arc::new(LocalStore::new(store))).await?;
    run(relay, listener, extra).await
}

async fn run(
    relay: Relay,
    listener: tokio::net::TcpListener,
    extra: axum::Router,
) -> Result<(), RelayError> {
    let app = relay.router().merge(extra);
    relay.spawn_quarantine_purge();
    let recovering = relay.clone();
    tokio::spawn(async move {
        if let Err(e) = recovering.recover().await {
            tracing::error!(error = %e, "start-up recovery failed");
        }
    });
    // Stop listening first, then flush: every store the relay saves to is reached without this
    // listener (`serve` saves in process, `relay` over HTTP to another process).
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("listener closed; flushing dirty rooms");
    relay.flush().await;
    tracing::info!("ykeep-relay stopped");
    Ok(())
}
