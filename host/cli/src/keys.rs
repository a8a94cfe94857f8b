//! `sluice keys …`: the command-line face of [`sluice_backends::keys`]. Reads `[postgres]` (and
//! `[redis]`, to announce changes) from the gateway's config, and the HMAC secret from an
//! environment variable, the same the auth plugin's config names.

use std::path::Path;

use clap::Subcommand;
use sluice_backends::keys::{KeyAdmin, KeySpec, RedisAnnouncer};
use sluice_backends::postgres::PostgresBackend;
use sluice_backends::redis::RedisBackend;
use sluice_config::GatewayConfig;
use sluice_core::telemetry::metrics::Registry;

/// `sluice keys` subcommands.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (the only time it is shown).
    Create {
        /// Who the key belongs to (passed upstream as the subject).
        #[arg(long)]
        owner: String,
        /// A name to tell the key apart.
        #[arg(long)]
        name: String,
        /// A scope to grant; repeat for more.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// The caller's tier.
        #[arg(long, default_value = "free")]
        tier: String,
        /// The environment in the key's prefix (`sk_<env>_`).
        #[arg(long, default_value = "live")]
        env: String,
        /// Days until the key expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Make a key for the auth plugin's `static_keys` (no Postgres needed): prints the key and
    /// the config entry with its hash.
    NewStatic {
        /// The entry's id in audit rows and the key-id header.
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        id: i64,
        /// Who the key belongs to.
        #[arg(long)]
        owner: String,
        /// A scope to grant; repeat for more.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// The caller's tier.
        #[arg(long, default_value = "free")]
        tier: String,
        /// The environment in the key's prefix.
        #[arg(long, default_value = "live")]
        env: String,
    },
    /// List keys (no secrets): id, prefix, state, owner, name, tier, times, scopes.
    List {
        /// Only this owner's keys.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Revoke a key now; every gateway stops accepting it within a second.
    Revoke {
        /// The key's id.
        id: i64,
    },
    /// Replace a key: print the new one; the old one keeps working for the grace period.
    Rotate {
        /// The key's id.
        id: i64,
        /// Hours the old key keeps working.
        #[arg(long, default_value_t = 24)]
        grace_hours: u32,
        /// The new key's environment.
        #[arg(long, default_value = "live")]
        env: String,
    },
}

/// Runs `command` against the config at `config` (the embedded default when `None`).
pub async fn command(config: Option<&Path>, options: KeysOptions, command: KeysCommand) -> anyhow::Result<()> {
    let config = crate::config::load(config)?;
    let action = match command {
        KeysCommand::Create {
            owner,
            name,
            scopes,
            tier,
            env,
            expires_in_days,
        } => KeysAction::Create(KeySpec {
            env,
            owner,
            name,
            scopes,
            tier,
            expires_in_days,
        }),
        KeysCommand::NewStatic {
            id,
            owner,
            scopes,
            tier,
            env,
        } => KeysAction::NewStatic {
            id,
            spec: KeySpec {
                env,
                owner,
                name: String::new(),
                scopes,
                tier,
                expires_in_days: None,
            },
        },
        KeysCommand::List { owner } => KeysAction::List { owner },
        KeysCommand::Revoke { id } => KeysAction::Revoke { id },
        KeysCommand::Rotate { id, grace_hours, env } => KeysAction::Rotate { id, env, grace_hours },
    };
    println!("{}", run(&config, &options, action).await?);
    Ok(())
}

/// What to do.
#[derive(Debug, Clone)]
pub enum KeysAction {
    /// Make a key and print it once.
    Create(KeySpec),
    /// Make a key for the auth plugin's `static_keys` (no Postgres): print it and the config
    /// entry holding its hash.
    NewStatic {
        /// The entry's id (negative keeps clear of `api_keys` ids).
        id: i64,
        /// What the key is for (`env`, `owner`, `scopes`, `tier`; name and expiry unused).
        spec: KeySpec,
    },
    /// Print the keys (of one owner).
    List {
        /// Only this owner's.
        owner: Option<String>,
    },
    /// Revoke a key now.
    Revoke {
        /// The key's id.
        id: i64,
    },
    /// Replace a key, the old one working for a grace period.
    Rotate {
        /// The key's id.
        id: i64,
        /// The new key's environment.
        env: String,
        /// Hours the old key keeps working.
        grace_hours: u32,
    },
}

/// Where the secret and the announcement channel come from.
#[derive(Debug, Clone)]
pub struct KeysOptions {
    /// The environment variable holding the HMAC secret.
    pub secret_env: String,
    /// The auth plugin's revocation channel.
    pub channel: String,
}

/// Runs `action` against the backends of `config`; returns what to print.
pub async fn run(config: &GatewayConfig, options: &KeysOptions, action: KeysAction) -> anyhow::Result<String> {
    let secret = || {
        std::env::var(&options.secret_env).map_err(|_| {
            anyhow::anyhow!(
                "set {} to the auth plugin's secret (the value its `secret` config names)",
                options.secret_env
            )
        })
    };
    if let KeysAction::NewStatic { id, spec } = &action {
        let secret = secret()?;
        if secret.len() < 16 {
            anyhow::bail!("the auth secret must be at least 16 bytes");
        }
        let key = sluice_backends::keys::generate_key(&spec.env)?;
        let scopes: Vec<String> = spec.scopes.iter().map(|s| format!("{s:?}")).collect();
        return Ok(format!(
            "{key}\nThis is the only time the key is shown: store it now. Add to the auth plugin's config:\n\
             static_keys = [{{ id = {id}, hash = \"{}\", owner = {:?}, scopes = [{}], tier = {:?} }}]",
            sluice_backends::keys::key_hash_hex(secret.as_bytes(), &key),
            spec.owner,
            scopes.join(", "),
            spec.tier
        ));
    }
    let Some(pg_settings) = &config.postgres else {
        anyhow::bail!("the config has no [postgres] section: API keys live in Postgres");
    };
    let secret = secret()?;
    let registry = Registry::new();
    let pg = PostgresBackend::connect_lazy(pg_settings, &registry)?;
    let announcer = match &config.redis {
        Some(settings) => Some(RedisAnnouncer {
            redis: RedisBackend::connect(settings, &registry)?,
            channel: options.channel.clone(),
        }),
        None => None,
    };
    let admin = KeyAdmin::new(pg.pool(), secret.as_bytes(), announcer)?;
    let out = match action {
        KeysAction::Create(spec) => {
            let new = admin.create(&spec).await?;
            format!(
                "created key {} for {} ({})\n{}\nThis is the only time the key is shown: store it now.",
                new.id, spec.owner, spec.name, new.key
            )
        }
        KeysAction::List { owner } => {
            let keys = admin.list(owner.as_deref()).await?;
            let mut out = format!(
                "{:>6}  {:<12}  {:<9}  {:<16}  {:<16}  {:<8}  {:<20}  {:<20}  {:<20}  scopes\n",
                "id", "prefix", "state", "owner", "name", "tier", "created", "expires", "last used"
            );
            for k in keys {
                out.push_str(&format!(
                    "{:>6}  {:<12}  {:<9}  {:<16}  {:<16}  {:<8}  {:<20}  {:<20}  {:<20}  {}\n",
                    k.id,
                    k.prefix,
                    k.state,
                    k.owner,
                    k.name,
                    k.tier,
                    k.created_at,
                    if k.expires_at.is_empty() {
                        "never"
                    } else {
                        &k.expires_at
                    },
                    if k.last_used_at.is_empty() {
                        "never"
                    } else {
                        &k.last_used_at
                    },
                    k.scopes
                ));
            }
            out
        }
        KeysAction::NewStatic { .. } => unreachable!("answered above"),
        KeysAction::Revoke { id } => {
            admin.revoke(id).await?;
            format!("revoked key {id}")
        }
        KeysAction::Rotate { id, env, grace_hours } => {
            let new = admin.rotate(id, &env, grace_hours).await?;
            format!(
                "rotated key {id}: it works for {grace_hours} more hours\nnew key {}\n{}\nThis is the only time the key is shown: store it now.",
                new.id, new.key
            )
        }
    };
    Ok(out)
}
