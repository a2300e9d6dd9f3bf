//! The command line: `run`, `check-config`, `status`, `backtest` and the rest.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Default config location of a packaged install.
pub const DEFAULT_CONFIG: &str = "/etc/backstop/backstop.toml";

/// backstop watches every deployment of your services and rolls back the bad ones.
#[derive(Debug, Parser)]
#[command(
    name = "backstop",
    version,
    about,
    long_about = "backstop watches every deployment of your services: for a window after each \
deployment it samples HTTP health checks and Prometheus queries, judges them against thresholds \
and the pre-deployment baseline, and when a release is condemned deploys the last release it \
verified healthy (Octopus Deploy), exactly once.\n\n\
The daemon (`backstop run`) reads /etc/backstop/backstop.toml by default. SIGTERM and SIGINT \
stop it cleanly; SIGHUP reloads the configuration (a bad file is rejected and the running \
configuration kept). Under systemd it speaks the notify protocol (READY, STATUS, RELOADING, \
STOPPING, WATCHDOG). Its HTTP API and Prometheus metrics listen on 127.0.0.1:9870 by default."
)]
pub struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "BACKSTOP_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (SIGTERM/SIGINT stop it, SIGHUP reloads the config).
    Run {
        /// Config file (TOML).
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate a config file; exits non-zero and lists every problem when it is invalid.
    CheckConfig {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print each watch's state from a running daemon.
    Status {
        /// Base URL of the daemon's API.
        #[arg(long, default_value = "http://127.0.0.1:9870")]
        url: String,
        /// Print the raw JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List past deployments and their verdicts, newest first.
    History {
        /// Only this watch.
        watch: Option<String>,
        #[arg(long, default_value = "http://127.0.0.1:9870")]
        url: String,
        /// How many entries.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Print one verdict's evidence as a readable report (ID from `history` or status).
    Explain {
        id: String,
        #[arg(long, default_value = "http://127.0.0.1:9870")]
        url: String,
        /// Print the raw evidence document (JSON).
        #[arg(long)]
        json: bool,
    },
    /// Pause a watch: deployments are recorded, not observed or acted on (persisted).
    Pause {
        watch: String,
        #[command(flatten)]
        auth: ApiAuth,
    },
    /// Resume a paused watch.
    Resume {
        watch: String,
        #[command(flatten)]
        auth: ApiAuth,
    },
    /// Replay a watch's past deployments against Prometheus history: what backstop would have
    /// decided, when and why. Read-only: lists deployments from the deployer (Octopus), never
    /// deploys.
    Backtest {
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The watch to backtest.
        #[arg(long)]
        watch: String,
        /// Start of the range: RFC 3339 (2025-05-01T10:00:00Z) or a duration ago (7d, 36h).
        #[arg(long)]
        from: String,
        /// End of the range, like --from (default: now).
        #[arg(long)]
        to: Option<String>,
        /// Print the JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Watch backstop catch a bad release and roll it back: a simulated service and deployment
    /// tool, real HTTP on loopback, no config, under a minute.
    Demo {
        /// What goes wrong with the new release.
        #[arg(long, value_enum, default_value = "bad-health")]
        scenario: crate::demo::Scenario,
        /// List the scenarios.
        #[arg(long)]
        list: bool,
        /// Print the evidence documents (JSON) instead of the live view.
        #[arg(long)]
        json: bool,
        /// After the scenario, keep the daemon and the simulations running and print the
        /// dashboard's URL; Ctrl-C stops.
        #[arg(long)]
        stay: bool,
    },
    /// Serve the demo's simulated service and Octopus-shaped deployment API (for benchmarks);
    /// prints their URLs as JSON and runs until SIGTERM/SIGINT.
    #[command(hide = true)]
    Simulate,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from this command line definition.
    Man,
}

/// Where and how the CLI reaches a running daemon's token-protected API.
#[derive(Debug, clap::Args)]
pub struct ApiAuth {
    #[arg(long, default_value = "http://127.0.0.1:9870")]
    pub url: String,
    /// File holding the API bearer token (e.g. /etc/backstop/token).
    #[arg(long, conflicts_with = "token_env")]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the token.
    #[arg(long, default_value = "BACKSTOP_TOKEN")]
    pub token_env: String,
}

/// The completion script for `shell`. Generated into memory because clap_complete panics on
/// a write error (a closed pipe), and the CLI must not.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "backstop", &mut buf);
    buf
}

/// Writes the man page for the `backstop` command.
pub fn man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    clap_mangen::Man::new(Cli::command()).render(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packaged man page and completions are generated from this definition and committed
    /// (so `cargo deb` can install them); this test fails when they are stale.
    #[test]
    fn committed_man_page_and_completions_are_current() {
        let root = env!("CARGO_MANIFEST_DIR");
        let read = |p: &str| std::fs::read(format!("{root}/{p}")).unwrap_or_default();
        let mut page = Vec::new();
        man(&mut page).unwrap();
        let stale = |p: &str| {
            format!("{p} is stale: regenerate it with `cargo run -- man > config/man/backstop.1` and `cargo run -- completions <shell> > config/completions/...`")
        };
        assert!(
            read("config/man/backstop.1") == page,
            "{}",
            stale("config/man/backstop.1")
        );
        for (shell, path) in [
            (
                clap_complete::Shell::Bash,
                "config/completions/backstop.bash",
            ),
            (clap_complete::Shell::Zsh, "config/completions/_backstop"),
            (
                clap_complete::Shell::Fish,
                "config/completions/backstop.fish",
            ),
        ] {
            assert!(read(path) == completions(shell), "{}", stale(path));
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
