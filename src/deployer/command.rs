//! `kind = "command"` deployer: deploy by running a program (argv from config, no shell).
//!
//! Placeholders in `argv` are filled from the intent, and the same values are in the
//! environment (`BACKSTOP_WATCH`, `BACKSTOP_RELEASE`, `BACKSTOP_VERSION`,
//! `BACKSTOP_CONDEMNED_RELEASE`, `BACKSTOP_ACTION`, `BACKSTOP_IDEMPOTENCY_KEY`,
//! `BACKSTOP_ENVIRONMENT`).
//!
//! **Run at most once per intent.** backstop cannot ask a script what it did, so it never runs
//! one twice: the call count is persisted before the program starts, and an intent found with
//! a call already made (the previous process died while the program ran) fails for a human to
//! check instead of running again. For the same reason a failing program is not retried: a
//! script that half-ran must not run again.

use crate::command::{self, CommandResult};
use crate::config::CommandDeployerConfig;
use crate::deployer::{fill, placeholders, Exec, ExecOutcome, Target};
use crate::metrics::Metrics;
use crate::model::{DeployIntent, IntentState};

/// Text kept from the program's output in details and messages.
const OUTPUT_EXCERPT: usize = 300;
/// Operation label of `backstop_deployer_api_errors_total`, shared with the other kinds.
const OP_DEPLOY: &str = "create_deployment";

/// Why an intent that already made its call is not run again.
pub const ALREADY_RAN: &str = "the deploy command may already have run before a restart; backstop does not run it twice — check and finish by hand";

/// A runner for one `[deployers.NAME]` of kind command.
#[derive(Clone)]
pub struct CommandDeployer {
    name: String,
    config: CommandDeployerConfig,
    metrics: Metrics,
}

impl std::fmt::Debug for CommandDeployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandDeployer")
            .field("name", &self.name)
            .field("program", &self.config.argv.first())
            .finish_non_exhaustive()
    }
}

impl CommandDeployer {
    pub fn new(name: &str, config: CommandDeployerConfig, metrics: Metrics) -> Self {
        CommandDeployer {
            name: name.to_string(),
            config,
            metrics,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &CommandDeployerConfig {
        &self.config
    }

    /// Runs the program once for the intent; never a second time, even after a restart.
    pub(crate) async fn execute(
        &self,
        target: &Target<'_>,
        rec: &mut DeployIntent,
        exec: Exec<'_>,
    ) -> ExecOutcome {
        match rec.state {
            IntentState::Succeeded => return ExecOutcome::Succeeded,
            IntentState::Failed => {
                return ExecOutcome::Failed(
                    rec.detail
                        .clone()
                        .unwrap_or_else(|| "the deploy command failed".into()),
                )
            }
            IntentState::Unknown | IntentState::Superseded => {
                if let Some(out) = crate::deployer::octopus::protocol::outcome(rec) {
                    return out;
                }
            }
            IntentState::Pending | IntentState::Created => {}
        }
        if rec.calls > 0 {
            tracing::error!(deployer = %self.name, watch = %target.watch, calls = rec.calls, "{ALREADY_RAN}");
            return ExecOutcome::Failed(ALREADY_RAN.into());
        }
        let argv = self.argv(target, rec);
        let env = environment(target, rec);
        rec.calls += 1;
        if !(exec.progress)(rec) {
            return ExecOutcome::Failed(crate::deployer::NOT_RECORDED.into());
        }
        tracing::info!(deployer = %self.name, watch = %target.watch, program = ?argv.first(), "running the deploy command");
        // Not cancellable: killing a deployment script half-way is worse than letting it finish
        // (bounded by the timeout). A shutdown that cannot wait leaves the intent with its call
        // counted, which a restart reports instead of repeating.
        let result = command::run(&argv, &env, self.config.calls.timeout).await;
        if result.success() {
            rec.state = IntentState::Succeeded;
            rec.detail = Some(summary(&result));
            (exec.progress)(rec);
            tracing::info!(deployer = %self.name, watch = %target.watch, "{}", result.describe());
            return ExecOutcome::Succeeded;
        }
        self.metrics.deployer_error(&self.name, OP_DEPLOY);
        ExecOutcome::Failed(failure(&result))
    }

    /// `argv` with placeholders filled in, each element on its own (no shell, no splitting).
    fn argv(&self, target: &Target<'_>, rec: &DeployIntent) -> Vec<String> {
        let values = placeholders(target, rec);
        self.config
            .argv
            .iter()
            .map(|arg| fill(arg, &values, false))
            .collect()
    }
}

/// The intent as environment variables for the program.
fn environment(target: &Target<'_>, rec: &DeployIntent) -> Vec<(String, String)> {
    [
        ("BACKSTOP_WATCH", target.watch),
        ("BACKSTOP_RELEASE", rec.target_release.as_str()),
        (
            "BACKSTOP_VERSION",
            rec.target_version.as_deref().unwrap_or(""),
        ),
        ("BACKSTOP_CONDEMNED_RELEASE", rec.condemned_release.as_str()),
        ("BACKSTOP_ACTION", rec.kind.as_str()),
        ("BACKSTOP_IDEMPOTENCY_KEY", rec.marker.as_str()),
        ("BACKSTOP_ENVIRONMENT", target.environment),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// "exit 0 in 120 ms: <last line of output>".
fn summary(result: &CommandResult) -> String {
    let last = result
        .stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty());
    match last {
        Some(line) => format!("{}: {}", result.describe(), head(line)),
        None => result.describe(),
    }
}

/// "deploy command exit 1 in 30 ms; stderr: ...<its end>".
fn failure(result: &CommandResult) -> String {
    let stderr = result.stderr.trim();
    if stderr.is_empty() {
        format!("deploy command {}", result.describe())
    } else {
        format!(
            "deploy command {}; stderr: {}",
            result.describe(),
            tail(stderr)
        )
    }
}

fn head(text: &str) -> String {
    if text.chars().count() <= OUTPUT_EXCERPT {
        return text.to_string();
    }
    let cut: String = text.chars().take(OUTPUT_EXCERPT).collect();
    format!("{cut}...")
}

/// The end of a text: the last lines are where a failing program says why.
fn tail(text: &str) -> String {
    let n = text.chars().count();
    if n <= OUTPUT_EXCERPT {
        return text.to_string();
    }
    let end: String = text.chars().skip(n - OUTPUT_EXCERPT).collect();
    format!("...{end}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::config::CallSettings;
    use crate::model::ActionKind;

    fn deployer(argv: &[&str]) -> CommandDeployer {
        let config = CommandDeployerConfig {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            calls: CallSettings {
                timeout: Duration::from_secs(10),
                task_poll: Duration::from_secs(5),
                task_timeout: Duration::from_secs(60),
                max_retries: 6,
                settle: std::time::Duration::from_secs(1),
            },
        };
        CommandDeployer::new("script", config, Metrics::new())
    }

    fn target() -> Target<'static> {
        Target {
            watch: "shop",
            project: "Projects-1",
            environment: "Environments-1",
            application: None,
        }
    }

    fn record() -> DeployIntent {
        DeployIntent {
            id: "rb-1".into(),
            observation_id: "obs-1".into(),
            watch: "shop".into(),
            kind: ActionKind::Rollback,
            calls: 0,
            condemned_release: "Releases-2".into(),
            target_release: "Releases 1".into(),
            target_version: Some("1.0.0".into()),
            environment: "Environments-1".into(),
            marker: "[backstop-rollback:rb-1]".into(),
            comments: String::new(),
            state: IntentState::Pending,
            deployment_id: None,
            task_id: None,
            detail: None,
            decided_at: Utc::now(),
            ..crate::model::DeployIntent::blank()
        }
    }

    /// Runs `execute`, returning the outcome and the call counts seen by `progress`.
    async fn run(d: &CommandDeployer, rec: &mut DeployIntent) -> (ExecOutcome, Vec<u32>) {
        let cancel = CancellationToken::new();
        let mut seen = Vec::new();
        let mut progress = |r: &mut DeployIntent| {
            seen.push(r.calls);
            true
        };
        let out = d
            .execute(
                &target(),
                rec,
                Exec {
                    cancel: &cancel,
                    progress: &mut progress,
                },
            )
            .await;
        (out, seen)
    }

    #[tokio::test]
    async fn runs_once_with_filled_argv_and_the_intent_in_the_environment() {
        let d = deployer(&[
            "sh",
            "-c",
            "echo \"$1|$2|$BACKSTOP_WATCH|$BACKSTOP_RELEASE|$BACKSTOP_VERSION|$BACKSTOP_CONDEMNED_RELEASE|$BACKSTOP_ACTION|$BACKSTOP_IDEMPOTENCY_KEY|$BACKSTOP_ENVIRONMENT\"",
            "sh",
            "{{target_release}}",
            "--from={{condemned_release}}",
        ]);
        let mut rec = record();
        let (out, seen) = run(&d, &mut rec).await;
        assert_eq!(out, ExecOutcome::Succeeded);
        assert_eq!(rec.state, IntentState::Succeeded);
        assert_eq!(rec.calls, 1);
        assert_eq!(
            seen.first(),
            Some(&1),
            "the call is persisted before the run"
        );
        let detail = rec.detail.unwrap();
        assert!(detail.starts_with("exit 0 in"), "{detail}");
        // A placeholder value with a space stays one argument.
        assert!(
            detail.ends_with(
                "Releases 1|--from=Releases-2|shop|Releases 1|1.0.0|Releases-2|rollback|[backstop-rollback:rb-1]|Environments-1"
            ),
            "{detail}"
        );
    }

    #[tokio::test]
    async fn an_intent_whose_call_was_made_is_never_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ran");
        let d = deployer(&["touch", flag.to_str().unwrap()]);
        let mut rec = record();
        rec.calls = 1;
        let (out, seen) = run(&d, &mut rec).await;
        assert_eq!(out, ExecOutcome::Failed(ALREADY_RAN.into()));
        assert!(!flag.exists(), "the program ran again");
        assert_eq!(rec.calls, 1);
        assert!(seen.is_empty());
    }

    #[tokio::test]
    async fn a_failing_program_fails_with_its_exit_and_stderr_and_is_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let script = format!(
            "echo x >> {}; echo 'no such release' >&2; exit 3",
            count.display()
        );
        let d = deployer(&["sh", "-c", &script]);
        let mut rec = record();
        let (out, _) = run(&d, &mut rec).await;
        let ExecOutcome::Failed(msg) = out else {
            panic!("expected a failure, got {out:?}");
        };
        assert!(msg.contains("exit 3"), "{msg}");
        assert!(msg.ends_with("stderr: no such release"), "{msg}");
        assert_eq!(std::fs::read_to_string(&count).unwrap(), "x\n");
        assert_eq!(rec.calls, 1);
    }

    #[tokio::test]
    async fn a_missing_program_is_a_failure() {
        let d = deployer(&["/nonexistent/deploy"]);
        let mut rec = record();
        let (out, _) = run(&d, &mut rec).await;
        assert!(
            matches!(&out, ExecOutcome::Failed(m) if m.contains("could not start")),
            "{out:?}"
        );
    }

    #[test]
    fn long_output_keeps_the_start_of_stdout_and_the_end_of_stderr() {
        let long = format!("{}END", "a".repeat(1000));
        assert!(tail(&long).ends_with("aEND"));
        assert!(tail(&long).chars().count() <= OUTPUT_EXCERPT + 3);
        assert!(head(&long).ends_with("a..."));
        assert_eq!(tail("short"), "short");
    }
}
