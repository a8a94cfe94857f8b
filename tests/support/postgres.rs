//! A Postgres database of its own for each test, on the machine's real server, dropped when
//! the test ends.

/// The server the tests use (trust auth).
pub const SERVER: &str = "postgres://root@127.0.0.1:5432";

/// A database created for one test.
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// Its connection URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates `sluice_<tag>_<random>`.
    pub async fn create(tag: &str) -> Self {
        let name = format!("sluice_{tag}_{:08x}", fastrand::u32(..));
        let mut admin = admin().await;
        sqlx::Executor::execute(&mut admin, sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name} on {SERVER}: {e}"));
        TestDatabase {
            url: format!("{SERVER}/{name}"),
            name,
        }
    }
}

async fn admin() -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&format!("{SERVER}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("the tests need Postgres on {SERVER}: {e}"))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Dropped from a thread of its own: Drop cannot await, and the test's runtime may be
        // shutting down.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                let mut admin = admin().await;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = sqlx::Executor::execute(&mut admin, sqlx::AssertSqlSafe(sql)).await;
            });
        })
        .join();
    }
}
