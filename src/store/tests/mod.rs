//! One store test suite, run against both backends: [`both_backends!`] makes a SQLite and a
//! PostgreSQL case of each test. PostgreSQL cases need `BACKSTOP_TEST_POSTGRES_URL`
//! (`tests/postgres.sh` starts a throwaway server and sets it); without it they say they were
//! skipped and pass. Each PostgreSQL case works in a fresh schema of its own, so the cases
//! run in parallel.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

/// Runs each test body once per backend, as `NAME::sqlite` and `NAME::postgres`.
macro_rules! both_backends {
    ($($(#[$meta:meta])* fn $name:ident($fx:ident: &Fixture) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run($fx: &Fixture) $body

            #[test]
            fn sqlite() {
                run(&Fixture::sqlite())
            }

            #[test]
            fn postgres() {
                if let Some(fx) = Fixture::postgres() {
                    run(&fx)
                }
            }
        }
    )*};
}

mod fleet;
mod in_place;
mod records;
mod scrape;
mod writer;

/// The watches the tests write for: on PostgreSQL, [`Fixture::open`] takes their leases and
/// sets their fences, as the fleet manager would.
const WATCHES: [&str; 2] = ["shop", "cart"];
/// The node name [`Fixture::open`] writes as.
const NODE: &str = "test-node";

/// Where one test keeps its store; opening it again is a restart.
pub(super) enum Fixture {
    Sqlite(tempfile::TempDir),
    Postgres { admin: String, schema: String },
}

impl Fixture {
    fn sqlite() -> Self {
        Fixture::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh schema on the test server, or `None` (and a note) when none is configured.
    fn postgres() -> Option<Self> {
        let Ok(admin) = std::env::var("BACKSTOP_TEST_POSTGRES_URL") else {
            eprintln!("skipped: BACKSTOP_TEST_POSTGRES_URL not set");
            return None;
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
        Some(Fixture::Postgres { admin, schema })
    }

    /// The test's own URL: its schema first on the search path, and its name as the
    /// application name (so a test can find its own connections).
    fn url(&self) -> Option<String> {
        let Fixture::Postgres { admin, schema } = self else {
            return None;
        };
        let sep = if admin.contains('?') { '&' } else { '?' };
        Some(format!(
            "{admin}{sep}options=-c%20search_path%3D{schema}&application_name={schema}"
        ))
    }

    /// Opens the store without taking any lease.
    fn open_bare(&self) -> Result<Store, StoreError> {
        match self {
            Fixture::Sqlite(dir) => Store::open(dir.path()),
            Fixture::Postgres { .. } => {
                Store::open_postgres(&crate::secret::Secret::new(self.url().unwrap()))
            }
        }
    }

    /// Opens the store (again: a restart) as the owner of [`WATCHES`].
    fn open(&self) -> Store {
        let s = self.open_bare().unwrap();
        if s.is_shared() {
            for w in WATCHES {
                let Acquired::Got { epoch, .. } = s
                    .acquire_lease(w, NODE, std::time::Duration::from_secs(3600))
                    .unwrap()
                else {
                    panic!("the test's leases are its own")
                };
                s.set_fence(NODE, w, Some(epoch));
            }
        }
        s
    }

    /// A direct connection to the test's schema, for reaching under the API.
    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url().unwrap(), postgres::NoTls).unwrap()
    }

    /// Every row of a query whose columns are all text (SQL valid on both backends).
    fn rows(&self, s: &Store, sql: &str) -> Vec<Vec<String>> {
        match self {
            Fixture::Sqlite(_) => {
                let conn = s.conn();
                let mut stmt = conn.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_map([], |r| (0..n).map(|i| r.get::<_, String>(i)).collect())
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            Fixture::Postgres { .. } => self
                .client()
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect())
                .collect(),
        }
    }

    /// Runs a statement with one text parameter, written `$1`.
    fn execute(&self, s: &Store, sql: &str, param: &str) {
        match self {
            Fixture::Sqlite(_) => {
                s.conn().execute(sql, [param]).unwrap();
            }
            Fixture::Postgres { .. } => {
                self.client().execute(sql, &[&param]).unwrap();
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Fixture::Postgres { admin, schema } = self {
            if let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
    }
}
