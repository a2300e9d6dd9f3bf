//! A throwaway PostgreSQL cluster of a test's own, for tests and benchmarks that stop, restart
//! or break the server (the shared one of tests/postgres.sh must stay up for everyone else).
//!
//! Server binaries come from `BACKSTOP_TEST_PG_BIN` (tests/postgres.sh exports it) or
//! `/usr/local/bin`; without them [`Cluster::start`] says so and returns `None`. PostgreSQL
//! refuses to run as root, so as root the cluster belongs to the `postgres` user (`runuser`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running (or stopped) cluster in a temporary directory, removed on drop.
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

fn bin_dir() -> Option<PathBuf> {
    let candidates = std::env::var_os("BACKSTOP_TEST_PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/local/bin")]);
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Cluster {
    /// initdb and start on a free loopback port; `None` (and a note on stderr) without server
    /// binaries.
    pub fn start() -> Option<Cluster> {
        let Some(bin) = bin_dir() else {
            eprintln!(
                "skipped: no PostgreSQL server binaries (set BACKSTOP_TEST_PG_BIN; tests/postgres.sh does)"
            );
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("backstop-pg-own.")
            .tempdir()
            .expect("temp dir");
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot chown the cluster's directory to postgres");
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = Cluster {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = c.data();
        let out = c
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.start_server();
        Some(c)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far, for failure messages.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// A command for one of the server binaries, as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(args)
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
    }

    /// Starts the server and waits until it accepts connections (`pg_ctl -w`).
    pub fn start_server(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c max_connections=100 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.pg_ctl(&["-w", "-o", &opts, "start"]);
    }

    /// Stops the server the way an operator's restart does (`-m fast`: sessions are
    /// disconnected, in-flight transactions roll back) and waits until it is down.
    pub fn stop_server(&self) {
        self.pg_ctl(&["-w", "-m", "fast", "stop"]);
    }

    /// Stop, stay down for `outage`, start again.
    pub fn restart(&self, outage: Duration) {
        self.stop_server();
        std::thread::sleep(outage);
        self.start_server();
    }

    /// The superuser's URL of the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
