//! Running a configured program (a `[watch.command]` hook or a `command` deployer): argv from
//! config, no shell, extra environment, a hard timeout, and bounded captured output.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

/// Captured output is cut to this many bytes per stream: enough to explain, never a flood.
const OUTPUT_LIMIT: usize = 8 * 1024;

/// What a program run did, recorded as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandResult {
    pub argv: Vec<String>,
    /// Exit code; `None` when it was killed (timeout) or could not start.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Set when the program could not be started at all.
    pub spawn_error: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub duration_ms: u64,
}

impl CommandResult {
    /// The result when no `[watch.command]` is configured (a reload removed it).
    pub fn not_configured() -> Self {
        Self::not_run("no [watch.command] is configured")
    }

    /// The result of a program that was deliberately not started.
    pub fn not_run(why: &str) -> Self {
        CommandResult {
            argv: Vec::new(),
            exit_code: None,
            timed_out: false,
            spawn_error: Some(why.into()),
            stdout: String::new(),
            stderr: String::new(),
            duration_ms: 0,
        }
    }

    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// One line for humans: "exit 0 in 120 ms", "timed out after 60 s", "could not start: ...".
    pub fn describe(&self) -> String {
        if let Some(e) = &self.spawn_error {
            format!(
                "could not start {:?}: {e}",
                self.argv.first().cloned().unwrap_or_default()
            )
        } else if self.timed_out {
            format!("killed after timing out ({} ms)", self.duration_ms)
        } else {
            match self.exit_code {
                Some(c) => format!("exit {c} in {} ms", self.duration_ms),
                None => "killed by a signal".into(),
            }
        }
    }
}

/// Runs `argv` with `env` added, killing it after `timeout`. Never panics; every failure is in
/// the result.
pub async fn run(argv: &[String], env: &[(String, String)], timeout: Duration) -> CommandResult {
    let started = Instant::now();
    let mut result = CommandResult {
        argv: argv.to_vec(),
        exit_code: None,
        timed_out: false,
        spawn_error: None,
        stdout: String::new(),
        stderr: String::new(),
        duration_ms: 0,
    };
    let Some((program, args)) = argv.split_first() else {
        result.spawn_error = Some("empty argv".into());
        return result;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            result.spawn_error = Some(e.to_string());
            return result;
        }
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let outcome = tokio::time::timeout(timeout, async {
        let out = async {
            let mut buf = Vec::new();
            if let Some(mut p) = stdout {
                let _ = p.read_to_end(&mut buf).await;
            }
            buf
        };
        let err = async {
            let mut buf = Vec::new();
            if let Some(mut p) = stderr {
                let _ = p.read_to_end(&mut buf).await;
            }
            buf
        };
        tokio::join!(out, err, child.wait())
    })
    .await;
    match outcome {
        Ok((out, err, status)) => {
            result.stdout = clip(&out);
            result.stderr = clip(&err);
            match status {
                Ok(s) => result.exit_code = s.code(),
                Err(e) => result.spawn_error = Some(e.to_string()),
            }
        }
        Err(_) => {
            result.timed_out = true;
            let _ = child.kill().await;
        }
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

fn clip(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= OUTPUT_LIMIT {
        return text.into_owned();
    }
    let mut cut = OUTPUT_LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... [truncated]", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn captures_exit_code_output_and_env() {
        let r = run(
            &argv(&[
                "sh",
                "-c",
                "echo out; echo err >&2; echo $BACKSTOP_X; exit 3",
            ]),
            &[("BACKSTOP_X".into(), "hello".into())],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.stdout, "out\nhello\n");
        assert_eq!(r.stderr, "err\n");
        assert!(!r.success());
        assert!(r.describe().starts_with("exit 3"));
    }

    #[tokio::test]
    async fn times_out_and_kills() {
        let r = run(&argv(&["sleep", "30"]), &[], Duration::from_millis(100)).await;
        assert!(r.timed_out);
        assert_eq!(r.exit_code, None);
        assert!(r.duration_ms < 10_000);
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_not_a_panic() {
        let r = run(&argv(&["/nonexistent/prog"]), &[], Duration::from_secs(1)).await;
        assert!(r.spawn_error.is_some());
        assert!(r.describe().contains("could not start"));
        let r = run(&[], &[], Duration::from_secs(1)).await;
        assert!(r.spawn_error.is_some());
    }

    #[test]
    fn long_output_is_clipped() {
        let s = clip(&vec![b'a'; OUTPUT_LIMIT * 2]);
        assert!(s.len() < OUTPUT_LIMIT + 20);
        assert!(s.ends_with("[truncated]"));
    }
}
