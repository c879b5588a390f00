//! Harness for end-to-end tests: the real `web` and `seed` binaries (built by
//! `cargo build --workspace --bins`), each test on its own temporary database file
//! and free loopback port.

#![expect(clippy::unwrap_used, reason = "test harness: fail loudly")]

use std::fmt::Display;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::Value;
use tempfile::TempDir;

/// The admin token every test server is seeded with.
pub const ADMIN_TOKEN: &str = "end-to-end-admin-token-0123456789abcdef";

/// A built binary of this workspace, next to the test executable's folder.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

/// A temporary folder holding one database file, or the folder of a test whose
/// database is a PostgreSQL database of its own ([`Sandbox::on_postgres`]).
#[derive(Debug)]
pub struct Sandbox {
    pub dir: TempDir,
    pg: Option<PgDatabase>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self::in_dir(tempfile::tempdir().unwrap())
    }

    /// A sandbox in a folder of the caller's choosing (on a small disk, say).
    pub fn in_dir(dir: TempDir) -> Self {
        Self { dir, pg: None }
    }

    /// A sandbox on a PostgreSQL database of its own ([`PgDatabase`]); `None`
    /// without `TEST_DATABASE_URL`.
    pub fn on_postgres() -> Option<Self> {
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            pg: Some(PgDatabase::new()?),
        })
    }

    /// True for a sandbox on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// The `DATABASE_URL` its commands get: the file, or the PostgreSQL database.
    pub fn database_url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => self.db_path().display().to_string(),
        }
    }

    /// A direct connection to the sandbox's database, whichever backend.
    pub fn any_conn(&self) -> db::AnyConnection {
        let database = self.database_url().parse::<db::Database>().unwrap();
        db::AnyConnection::open(&database).unwrap()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("app.db")
    }

    pub fn backup_dir(&self) -> PathBuf {
        self.dir.path().join("backups")
    }

    /// A command for one of the binaries, with this sandbox's settings. The working
    /// folder is the sandbox, so no project `.env` leaks in.
    pub fn command(&self, binary: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin(binary));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("DATABASE_URL", self.database_url())
            .env("BACKUP_DIR", self.backup_dir())
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn");
        cmd
    }

    /// Runs a binary to completion; panics with its output if it fails.
    pub fn run(&self, binary: &str, args: &[&str]) -> Output {
        succeed(self.command(binary, args))
    }

    /// Runs a command that must fail; returns what it said on stderr.
    pub fn fail(mut cmd: Command) -> String {
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{cmd:?} succeeded: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `web migrate` then `seed`.
    pub fn prepare(&self) {
        self.run("web", &["migrate"]);
        self.run("seed", &[]);
    }

    /// A direct connection to the file, for asserting on rows.
    pub fn conn(&self) -> SqliteConnection {
        let mut conn = SqliteConnection::establish(self.db_path().to_str().unwrap()).unwrap();
        conn.batch_execute("PRAGMA busy_timeout = 5000").unwrap();
        conn
    }

    /// Starts `web serve` on a free port and waits until it answers.
    pub fn serve(&self, extra_env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut cmd = self.command("web", &["serve"]);
        cmd.env("BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent: agent(),
        };
        server.wait_ready(Duration::from_secs(20));
        server
    }

    /// Runs `web serve` where it must refuse to start; returns what it said on stderr.
    pub fn serve_refused(&self, extra_env: &[(&str, &str)]) -> String {
        let mut cmd = self.command("web", &["serve"]);
        cmd.env("BIND", "127.0.0.1:0")
            .envs(extra_env.iter().copied());
        Self::fail(cmd)
    }
}

/// Runs `cmd` to completion; panics with its output if it fails.
pub fn succeed(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `probe` every few milliseconds until it returns `Ok`. When `limit` passes
/// first, panics naming what was awaited and the last `Err`, which says what the
/// probe saw instead. `probe` may also panic itself to fail early (say, when the
/// process it waits on has exited).
#[track_caller]
pub fn wait_for<T, E: Display>(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> T {
    let started = Instant::now();
    loop {
        match probe() {
            Ok(found) => return found,
            Err(seen) => assert!(
                started.elapsed() < limit,
                "gave up after {limit:?} waiting for {what}; last seen: {seen}"
            ),
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// This build's migrations by the names the commands print, oldest first. Tests
/// that name a migration take it from here, so adding one breaks none of them.
pub fn migrations() -> Vec<String> {
    use diesel::migration::MigrationSource;
    let mut found = MigrationSource::<diesel::sqlite::Sqlite>::migrations(&db::MIGRATIONS).unwrap();
    found.sort_by_key(|m| m.name().version().to_string());
    found.iter().map(|m| m.name().to_string()).collect()
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP client that returns every status instead of turning 4xx/5xx into errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// One response: status, headers of interest, body parsed as JSON when it is.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub request_id: Option<String>,
}

/// A running `web serve`.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub base: String,
    pub agent: ureq::Agent,
}

impl Server {
    /// Waits until `/ready` answers 200. A server that exits first fails the wait
    /// at once, with what it said on stderr.
    fn wait_ready(&mut self, limit: Duration) {
        let what = format!("{}/ready to answer 200", self.base);
        wait_for(&what, limit, || {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    pipe.read_to_string(&mut stderr).unwrap();
                }
                panic!("web serve exited with {status} before it was ready:\n{stderr}");
            }
            match self.try_call("GET", "/ready", None, None) {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(format!("{} {}", r.status, r.body)),
                Err(err) => Err(err.to_string()),
            }
        });
    }

    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, ureq::Error> {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let response = match (method, body) {
            ("GET" | "DELETE", _) => {
                let mut req = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                if let Some(auth) = &auth {
                    req = req.header("Authorization", auth);
                }
                req.call()?
            }
            (_, body) => {
                let mut req = if method == "POST" {
                    self.agent.post(&url)
                } else {
                    self.agent.patch(&url)
                };
                if let Some(auth) = &auth {
                    req = req.header("Authorization", auth);
                }
                req.send_json(body.cloned().unwrap_or(Value::Null))?
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let request_id = header("x-request-id");
        let text = response.into_body().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply {
            status,
            body,
            request_id,
        })
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.try_call(method, path, token, body).unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status (waits up to 30 s).
    pub fn terminate(mut self) -> ExitStatus {
        signal(self.pid(), "TERM");
        wait_for(
            "the server to exit after SIGTERM",
            Duration::from_secs(30),
            || self.child.try_wait().unwrap().ok_or("still running"),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal by name with the system's `kill`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Rows of `table` (these `columns`, comma-separated) as JSON text, in key order.
pub fn dump(conn: &mut SqliteConnection, table: &str, columns: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        row: String,
    }
    diesel::sql_query(format!(
        "SELECT json_array({columns}) AS row FROM {table} ORDER BY 1"
    ))
    .load::<Row>(conn)
    .unwrap()
    .into_iter()
    .map(|r| r.row)
    .collect()
}

/// `PRAGMA integrity_check` on the file.
pub fn integrity(conn: &mut SqliteConnection) -> String {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    diesel::sql_query("PRAGMA integrity_check")
        .load::<Row>(conn)
        .unwrap()
        .into_iter()
        .map(|r| r.integrity_check)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A PostgreSQL database of its own on the server `TEST_DATABASE_URL` names
/// (`scripts/test-postgres.sh` sets it), dropped at the end.
#[derive(Debug)]
pub struct PgDatabase {
    base: String,
    pub name: String,
    /// The URL of this database, password included.
    pub url: String,
}

impl PgDatabase {
    /// `None` without `TEST_DATABASE_URL`: the PostgreSQL tests then return early.
    pub fn new() -> Option<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static MADE: AtomicU64 = AtomicU64::new(0);
        let base = std::env::var("TEST_DATABASE_URL").ok()?.trim().to_owned();
        if base.is_empty() {
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "e2e_{}_{nanos}_{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        pg_admin(&base)
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
            .unwrap();
        let (server, _) = base.rsplit_once('/').unwrap();
        let url = format!("{server}/{name}");
        Some(Self { base, name, url })
    }

    /// A connection to the server's own database, for administering this one.
    pub fn admin(&self) -> db::AnyConnection {
        pg_admin(&self.base)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // One statement per call: PostgreSQL runs a string of several as one
        // transaction, and DROP DATABASE refuses to run inside one.
        let mut admin = self.admin();
        let dropped = admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                self.name
            ))
            .and_then(|()| {
                admin.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
            });
        if let Err(err) = dropped {
            eprintln!("could not drop the test database {}: {err}", self.name);
        }
    }
}

fn pg_admin(base: &str) -> db::AnyConnection {
    db::AnyConnection::open(&db::Database::Postgres(base.into())).unwrap()
}
