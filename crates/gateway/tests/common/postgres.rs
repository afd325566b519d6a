//! A schema of its own on the PostgreSQL server at `NULLGATE_POSTGRES_URL`, dropped when the
//! test ends, for the tests that run against PostgreSQL (marked ignored without one).

use nullgate_gateway::store::postgres::with_search_path;

/// A fresh schema and a connection of the test's own on it.
pub struct Schema {
    /// The URL with the schema as the connections' `search_path`: what stores connect to.
    pub url: String,
    /// The schema's name.
    pub name: String,
    /// A connection of the test's own, on the same schema.
    pub admin: tokio_postgres::Client,
}

impl Schema {
    /// Creates `nullgate_test_<random>` on the server.
    pub async fn fresh() -> Self {
        let base = std::env::var("NULLGATE_POSTGRES_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .expect("NULLGATE_POSTGRES_URL is set at build time but not now");
        let name = format!("nullgate_test_{:016x}", rand::random::<u64>());
        let url = with_search_path(&base, &name);
        let (admin, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("connecting to NULLGATE_POSTGRES_URL");
        tokio::spawn(connection);
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}; SET search_path TO {name}"))
            .await
            .unwrap();
        Self { url, name, admin }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Also while a failed test unwinds; a schema left behind is only clutter.
        let sql = format!(
            "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {} CASCADE",
            self.name
        );
        let admin = &self.admin;
        tokio::task::block_in_place(|| {
            let _ = tokio::runtime::Handle::current().block_on(admin.batch_execute(&sql));
        });
    }
}
