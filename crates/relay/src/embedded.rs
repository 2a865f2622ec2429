//! The embedded snapshot store (`crates/store`), wired into `serve`, `store` and `token`.
//! Under `serve` the relay saves to it in process (`store_client::LocalStore`); its HTTP routes
//! are mounted beside the relay's for clients.

use axum::Router;
use ykeep_core::{ResourceId, ResourceKind};
use ykeep_relay::RelayError;
use ykeep_relay::config::{Config, TokenArgs};
use ykeep_store::clock::now_unix;
use ykeep_store::token::{Claims, mint};
use ykeep_store::{EmbeddedStore, StoreConfig};

fn store_config(config: &Config) -> Result<StoreConfig, RelayError> {
    let secret = config
        .secret
        .clone()
        .ok_or_else(|| RelayError::Config("the store needs --secret (YKEEP_SECRET)".into()))?;
    let token_key = match (&config.token_key, config.dev_allow_all) {
        (Some(key), _) => key.clone(),
        // Users are not checked in dev mode; the store still needs some key.
        (None, true) => random_secret(),
        (None, false) => {
            return Err(RelayError::Config(
                "the store needs --token-key (YKEEP_TOKEN_KEY)".into(),
            ));
        }
    };
    Ok(StoreConfig {
        data_dir: config.store_dir(),
        secret,
        token_key,
        auto_create: config.auto_create,
        max_snapshot_bytes: config.max_snapshot_bytes,
    })
}

/// Opens the embedded store under `<data>/store/` (for `serve` and `store`).
pub async fn open_store(config: &Config) -> Result<EmbeddedStore, RelayError> {
    EmbeddedStore::open(store_config(config)?)
        .await
        .map_err(|e| RelayError::Config(format!("embedded store: {e}")))
}

/// `serve --demo` only: `GET /demo/token` hands the page a short-lived token for every
/// resource, so the demo can load from the store directly as a real app would with its own
/// auth. Never mounted outside demo mode.
pub fn demo_token_router(token_key: String) -> Router {
    use axum::routing::get;
    const DEMO_TOKEN_SECONDS: u64 = 12 * 3600;
    Router::new().route(
        "/demo/token",
        get(move || {
            let claims = Claims {
                sub: "demo-user".into(),
                kind: "*".into(),
                id: "*".into(),
                exp: now_unix() + DEMO_TOKEN_SECONDS,
            };
            let token = mint(&token_key, &claims);
            async move { axum::Json(serde_json::json!({ "token": token })) }
        }),
    )
}

/// `ykeep-relay store`: the embedded store alone (with `/healthz`).
pub async fn store_only(config: Config) -> Result<(), RelayError> {
    let app = open_store(&config).await?.standalone_router();
    let listener = crate::bind(&config).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::shutdown_signal())
        .await?;
    Ok(())
}

/// `ykeep-relay token`: prints a user token for one resource (`*` allowed for kind or id).
pub fn print_token(args: TokenArgs) -> Result<(), RelayError> {
    if args.kind != "*" {
        args.kind
            .parse::<ResourceKind>()
            .map_err(|e| RelayError::Config(e.to_string()))?;
    }
    if args.id != "*" {
        ResourceId::parse(&args.id).map_err(|e| RelayError::Config(e.to_string()))?;
    }
    let claims = Claims {
        sub: args.sub,
        kind: args.kind,
        id: args.id,
        exp: now_unix() + args.ttl,
    };
    println!("{}", mint(&args.token_key, &claims));
    Ok(())
}

/// A random secret for `serve --demo` when none is given: 256 bits from the OS, as hex.
pub fn random_secret() -> String {
    ykeep_store::random::hex(32)
}
