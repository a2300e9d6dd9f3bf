//! The `backstop` binary: parse the command line, set up logging, dispatch.

use std::process::ExitCode;

use clap::Parser;

use backstop::cli::{Cli, Command, LogFormat};
use backstop::{config, daemon, signals};

fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Under journald the journal stamps every line itself.
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    // Colours only on a terminal: escape codes in the journal or a log file are noise.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match (format, journald) {
        (LogFormat::Json, _) => builder.json().init(),
        (LogFormat::Text, true) => builder.without_time().init(),
        (LogFormat::Text, false) => builder.init(),
    }
}

/// jemalloc instead of glibc's malloc: see Cargo.toml (a third of the daemon's CPU went to
/// malloc and its contended arena locks at 5,000 watches).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The daemon's runtime: a worker per core, and at most 64 threads for blocking calls (the
/// watch actors' store reads, the API's durable enqueues). They all wait for the store's one
/// connection, so more threads add no throughput, only memory: thousands of watches starting
/// at once had asked for the default 512.
fn daemon_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo shows its own live view; the daemon's logs would drown it.
    let level = match cli.command {
        Command::Demo { .. } => "off",
        // The report is the output; only problems (a retried call) go to stderr.
        Command::Backtest { .. } => "warn",
        _ => "info",
    };
    init_tracing(cli.log_format, level);
    match cli.command {
        Command::Demo { list: true, .. } => {
            print!("{}", backstop::demo::list());
            ExitCode::SUCCESS
        }
        Command::Simulate => {
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = rt.block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::channel(1);
                if let Err(e) = signals::forward(tx) {
                    eprintln!("cannot install signal handlers: {e}");
                }
                backstop::demo::simulate(async move {
                    while let Some(c) = rx.recv().await {
                        if c == signals::Control::Shutdown {
                            return;
                        }
                    }
                })
                .await
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo {
            scenario,
            json,
            stay,
            ..
        } => {
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let stay = stay.then(signals::stop_requested);
            match rt.block_on(backstop::demo::run(scenario, json, stay)) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Completions { shell } => {
            use std::io::Write;
            match std::io::stdout().write_all(&backstop::cli::completions(shell)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cannot write the completion script: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Man => match backstop::cli::man(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cannot write the man page: {e}");
                ExitCode::FAILURE
            }
        },
        Command::CheckConfig { config } => match config::check(&config) {
            Ok((c, warnings)) => {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}: OK ({} watch{}, {} deployer{})",
                    config.display(),
                    c.watches.len(),
                    if c.watches.len() == 1 { "" } else { "es" },
                    c.deployers.len(),
                    if c.deployers.len() == 1 { "" } else { "s" }
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", config.display());
                ExitCode::FAILURE
            }
        },
        Command::Run { config: path } => {
            let config = match config::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            };
            let rt = match daemon_runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            rt.block_on(async move {
                let (tx, rx) = tokio::sync::mpsc::channel(8);
                if let Err(e) = signals::forward(tx) {
                    eprintln!("cannot install signal handlers: {e}");
                    return ExitCode::FAILURE;
                }
                match daemon::run(config, path, rx).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!("{e}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
        Command::Backtest {
            config,
            watch,
            from,
            to,
            json,
        } => cli_call(backstop::backtest::command(
            &config,
            &watch,
            &from,
            to.as_deref(),
            json,
        )),
        Command::Status { url, json } => cli_call(backstop::client::status(&url, json)),
        Command::History { watch, url, limit } => {
            cli_call(backstop::client::history(&url, watch.as_deref(), limit))
        }
        Command::Explain { id, url, json } => cli_call(backstop::client::explain(&url, &id, json)),
        Command::Pause { watch, auth } => {
            cli_call(backstop::client::control(&auth, &watch, "pause"))
        }
        Command::Resume { watch, auth } => {
            cli_call(backstop::client::control(&auth, &watch, "resume"))
        }
    }
}

/// Runs one command of the CLI (an API call, a backtest) and prints its result or its error.
fn cli_call<F, E>(f: F) -> ExitCode
where
    F: std::future::Future<Output = Result<String, E>>,
    E: std::fmt::Display,
{
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(f) {
        Ok(text) => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
