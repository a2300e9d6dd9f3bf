//! The command line: `run`, `check-config`, `status`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Default config location of a packaged install.
pub const DEFAULT_CONFIG: &str = "/etc/backstop/backstop.toml";

/// backstop watches every deployment of your services and rolls back the bad ones.
#[derive(Debug, Parser)]
#[command(name = "backstop", version, about, long_about = None)]
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
}
