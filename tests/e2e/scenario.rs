//! The start most end-to-end tests share, in one call: a fake Octopus holding releases of
//! `Projects-1`, a fake app, a temp dir with the config written, the daemon running on it and,
//! for [`scenario`], a first release announced to watch `shop` and verified.
//!
//! [`Stage`] is the same start stopped before the daemon runs, for tests that script the fakes
//! first (a queued fault, a pre-existing deployment, a sick app) or verify nothing.

use std::time::Duration;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::harness::{Daemon, Setup, API_KEY};

/// How long [`verified`] waits for the verdict.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The fakes and the temp dir of a scenario, before the daemon starts.
pub struct Stage<const N: usize> {
    pub octopus: FakeOctopus,
    pub app: FakeApp,
    pub setup: Setup,
    /// Ids of the releases added, in the order of the versions given ("Releases-1", ...).
    pub releases: [String; N],
}

/// A running scenario. Keep it whole while the test runs: dropping `daemon` kills the process
/// and dropping `setup` deletes its config and state directory.
pub struct Scenario<const N: usize> {
    pub octopus: FakeOctopus,
    pub app: FakeApp,
    pub setup: Setup,
    pub daemon: Daemon,
    /// Ids of the releases added, in the order of the versions given ("Releases-1", ...).
    pub releases: [String; N],
}

impl<const N: usize> Stage<N> {
    /// Starts the fake Octopus (key [`API_KEY`]) with one release of `Projects-1` per version,
    /// then the fake app, and makes the temp dir.
    pub async fn new(versions: [&str; N]) -> Stage<N> {
        let octopus = FakeOctopus::start(API_KEY).await;
        let releases = versions.map(|v| octopus.add_release("Projects-1", v));
        let app = FakeApp::start().await;
        let setup = Setup::new();
        Stage {
            octopus,
            app,
            setup,
            releases,
        }
    }

    /// The `[server]`, `[state]` and `[deployers.octo]` sections, pointing at this Octopus.
    pub fn base(&self) -> String {
        self.setup.base(&self.octopus.url())
    }

    /// Writes the config `config` makes from the stage and starts the daemon on it.
    pub async fn start(self, config: impl FnOnce(&Stage<N>) -> String) -> Scenario<N> {
        self.setup.write(&config(&self));
        let daemon = Daemon::start(&self.setup).await;
        Scenario {
            octopus: self.octopus,
            app: self.app,
            setup: self.setup,
            daemon,
            releases: self.releases,
        }
    }
}

/// Starts a scenario whose first release is verified: [`Stage::new`] with `versions` (at least
/// one), [`Stage::start`] with `config`, then [`verified`] on watch `shop` with the first release.
pub async fn scenario<const N: usize>(
    versions: [&str; N],
    config: impl FnOnce(&Stage<N>) -> String,
) -> Scenario<N> {
    let s = Stage::new(versions).await.start(config).await;
    let first = s
        .releases
        .first()
        .expect("scenario needs a release to verify");
    verified(&s.daemon, first).await;
    s
}

/// Announces `release` to watch `shop` and waits until it is verified and the watch idle.
pub async fn verified(d: &Daemon, release: &str) {
    assert_eq!(d.announce("shop", release).await, 202);
    d.wait_watch("shop", "release verified", VERIFY_TIMEOUT, |w| {
        w["last_good_release"] == release && w["state"] == "idle"
    })
    .await;
}
