//! The `sluice keys` and `sluice migrate` commands, run as a person would, against a database
//! of the test's own: the key printed once and stored only as its keyed hash, listing, rotation,
//! revocation, static keys, and a clear error without the secret.

use std::path::PathBuf;
use std::process::{Command, Output};

use sluice_e2e::postgres::TestDatabase;

const SECRET: &str = "keys-cli-test-secret-0123456789";

/// The `sluice` binary `cargo test --workspace` builds beside the test binaries.
fn sluice_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = dir.join("sluice");
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace`, which builds it",
        bin.display()
    );
    bin
}

fn sluice(config: &std::path::Path, args: &[&str], secret: Option<&str>) -> Output {
    let mut command = Command::new(sluice_bin());
    command.arg("keys").arg("--config").arg(config).args(args);
    command.env_remove("SLUICE_AUTH_SECRET").env("RUST_LOG", "warn");
    if let Some(secret) = secret {
        command.env("SLUICE_AUTH_SECRET", secret);
    }
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_listed_rotated_and_revoked_from_the_command_line() {
    let db = TestDatabase::create("keyscli").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, format!("[postgres]\nurl = {:?}\n", db.url)).unwrap();
    let migrated = Command::new(sluice_bin())
        .args(["migrate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(text(&migrated).contains("applied"), "{}", text(&migrated));

    let created = text(&sluice(
        &config,
        &[
            "create", "--owner", "team-cli", "--name", "ci", "--scope", "read", "--tier", "pro",
        ],
        Some(SECRET),
    ));
    let key = created.lines().nth(1).unwrap().to_string();
    assert_eq!(sluice_auth_keys::parse(&key), Ok("live"), "{created}");
    assert!(created.contains("only time the key is shown"));
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (id, hash, prefix): (i64, Vec<u8>, String) = sqlx::query_as("SELECT id, key_hash, prefix FROM api_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        hash,
        sluice_auth_keys::hash(SECRET.as_bytes(), &key),
        "the keyed hash, not the key"
    );
    assert_eq!(prefix, &key[..12]);

    let listed = text(&sluice(&config, &["list"], Some(SECRET)));
    assert!(
        listed.contains("team-cli") && listed.contains("active") && !listed.contains(&key),
        "{listed}"
    );

    let rotated = text(&sluice(
        &config,
        &["rotate", &id.to_string(), "--grace-hours", "2"],
        Some(SECRET),
    ));
    let successor = rotated.lines().nth(2).unwrap().to_string();
    assert!(sluice_auth_keys::parse(&successor).is_ok(), "{rotated}");
    let listed = text(&sluice(&config, &["list", "--owner", "team-cli"], Some(SECRET)));
    assert!(listed.contains("rotating") && listed.contains("active"), "{listed}");

    assert!(text(&sluice(&config, &["revoke", &id.to_string()], Some(SECRET))).contains("revoked key"));
    assert!(text(&sluice(&config, &["list"], Some(SECRET))).contains("revoked"));
    let again = sluice(&config, &["revoke", &id.to_string()], Some(SECRET));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no active key"));

    let no_secret = sluice(&config, &["list"], None);
    assert!(!no_secret.status.success());
    assert!(String::from_utf8_lossy(&no_secret.stderr).contains("SLUICE_AUTH_SECRET"));

    let fresh = text(&sluice(
        &config,
        &["new-static", "--owner", "ops", "--scope", "admin"],
        Some(SECRET),
    ));
    let static_key = fresh.lines().next().unwrap();
    let want = sluice_auth_keys::hex(&sluice_auth_keys::hash(SECRET.as_bytes(), static_key));
    assert!(fresh.contains(&format!("hash = \"{want}\"")), "{fresh}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_takes_a_database_url_or_database_url_from_the_environment() {
    let db = TestDatabase::create("migrateurl").await;
    let run = |args: &[&str], env: Option<&str>| {
        let mut command = Command::new(sluice_bin());
        command.arg("migrate").args(args).env_remove("DATABASE_URL");
        if let Some(url) = env {
            command.env("DATABASE_URL", url);
        }
        command.output().unwrap()
    };
    let applied = text(&run(&["--database-url", &db.url], None));
    assert!(applied.contains("applied"), "{applied}");
    let again = text(&run(&[], Some(&db.url)));
    assert!(again.contains("the schema is up to date"), "{again}");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (tables,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM information_schema.tables WHERE table_name = 'api_keys'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(tables, 1);
    let refused = run(&["--database-url", "mysql://nope/x"], None);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("postgres.url must start with postgres://"), "{err}");
}
