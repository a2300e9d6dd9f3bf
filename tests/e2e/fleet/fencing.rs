//! A paused owner (SIGSTOP past its lease, then SIGCONT) wakes up fenced: whatever point it
//! was frozen at, it makes no deploy call, sends no notification and writes nothing for the
//! watch once another node holds the lease.

use super::*;
use crate::common::sinks::FakeJsonHook;

/// Two nodes on one watch `shop` (window `window`, deployer call timeout `timeout`), each
/// notifying its own webhook receiver, with every write to the watch's state audited per node.
struct Pair {
    schema: Schema,
    octo: FakeOctopus,
    app: FakeApp,
    r2: String,
    hooks: Vec<FakeJsonHook>,
    names: [&'static str; 2],
    daemons: Vec<Option<Daemon>>,
    _setups: Vec<Setup>,
}

impl Pair {
    async fn start(window: &str, timeout: &str) -> Option<Pair> {
        let schema = Schema::create()?;
        let octo = FakeOctopus::start(API_KEY).await;
        let (_, r2) = octopus_with_a_new_release(&octo);
        let app = FakeApp::start().await;
        let names = ["n1", "n2"];
        let mut hooks = Vec::new();
        let mut setups = Vec::new();
        for n in names {
            let hook = FakeJsonHook::start().await;
            let watches = format!(
                "[notify.ops]\nkind = \"webhook\"\nurl = \"{}\"\n{}",
                hook.url(),
                shop_with(&app.url(), "notify = [\"ops\"]", window)
            );
            let setup = node_setup(&schema, n, &octo.url(), &watches);
            let toml = std::fs::read_to_string(setup.config_path()).unwrap();
            setup.write(&toml.replace("timeout = \"1s\"", &format!("timeout = \"{timeout}\"")));
            setups.push(setup);
            hooks.push(hook);
        }
        let daemons = start_all(&setups).await;
        schema.audit_writes();
        Some(Pair {
            schema,
            octo,
            app,
            r2,
            hooks,
            names,
            daemons,
            _setups: setups,
        })
    }

    fn daemon(&self, i: usize) -> &Daemon {
        self.daemons[i].as_ref().unwrap()
    }

    /// (owner's index, the other's index) once both agree.
    async fn owner(&self) -> (usize, usize) {
        let all: Vec<(&str, &Daemon)> = (0..2).map(|i| (self.names[i], self.daemon(i))).collect();
        let owner = agreed_owner(&all, "shop").await;
        let a = self.names.iter().position(|n| *n == owner).unwrap();
        (a, 1 - a)
    }

    /// Once the old owner `a` has resumed: it sees it lost the watch, and its status shows
    /// `b` as the owner. Then nothing it did after audit row `mark` may show anywhere.
    /// `in_flight`: it was frozen inside a step, which it finishes on waking, so its log must
    /// show the step refused ("no longer holds"). Frozen between steps, its fleet round may
    /// stop the watch before the actor tries anything.
    async fn assert_fenced(
        &self,
        (a, b): (usize, usize),
        mark: i64,
        hook_a_before: usize,
        in_flight: bool,
    ) {
        let (da, db) = (self.daemon(a), self.daemon(b));
        wait_log(da, "lost the lease of the watch", T).await;
        if in_flight {
            wait_log(da, "no longer holds", T).await;
        }
        da.wait_watch("shop", "the old owner sees the new one", T, |w| {
            w["owner"] == self.names[b]
        })
        .await;
        db.wait_watch("shop", "the new owner's rollback succeeded", T, |w| {
            w["rollback"]["state"] == "succeeded"
        })
        .await;
        // The new owner announced what it did (its own receiver), the old one nothing since it
        // resumed.
        self.hooks[b].wait_for(1, T).await;
        assert_eq!(
            self.hooks[a].requests().len(),
            hook_a_before,
            "the old owner sent a notification after it resumed:\n{}",
            da.logs()
        );
        assert_eq!(self.octo.post_attempts(), 1, "one deploy call in all");
        assert_eq!(
            self.octo.created_deployments().len(),
            1,
            "exactly one rollback"
        );
        assert_eq!(
            self.schema.writes_by(self.names[a], mark),
            Vec::<(String, String)>::new(),
            "the old owner wrote the watch's state after it resumed:\n{}",
            da.logs()
        );
        assert!(
            !self.schema.writes_by(self.names[b], 0).is_empty(),
            "the audit sees the new owner's writes"
        );
        let lease = self
            .schema
            .query("SELECT owner FROM leases WHERE watch = 'shop'");
        assert_eq!(
            lease[0].get::<_, Option<String>>(0).as_deref(),
            Some(self.names[b])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_resumes_fenced_while_the_new_owner_rolls_back() {
    let Some(p) = Pair::start("15s", "1s").await else {
        return;
    };
    let (a, b) = p.owner().await;
    let (da, db) = (p.daemon(a), p.daemon(b));
    assert_eq!(db.announce("shop", &p.r2).await, 202);
    da.wait_watch("shop", "the owner observes the release", T, observing)
        .await;
    // Frozen mid-observation; the release turns bad while it sleeps past its lease.
    da.signal("STOP");
    p.app.set_health(503);
    db.wait_watch("shop", "the other node took the watch over", T, |w| {
        w["owner"] == p.names[b]
    })
    .await;
    // The new owner condemns and rolls back; its create is stored at once but answered late,
    // so the old owner wakes up while that call is in flight.
    p.octo.hang_next_posts(1, Duration::from_secs(3));
    p.octo.wait_for_created(1, T).await;
    p.app.set_health(200);
    let mark = p.schema.audit_mark();
    let hook_a = p.hooks[a].requests().len();
    da.signal("CONT");
    p.assert_fenced((a, b), mark, hook_a, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_paused_with_its_create_in_flight_resumes_fenced_and_its_intent_is_adopted() {
    // The call stays in flight until the node is frozen however slow this test is: the
    // client waits up to 30s, the server answers after 5s.
    let Some(p) = Pair::start("6s", "30s").await else {
        return;
    };
    let (a, b) = p.owner().await;
    let (da, db) = (p.daemon(a), p.daemon(b));
    assert_eq!(da.announce("shop", &p.r2).await, 202);
    da.wait_watch("shop", "the owner observes the release", T, observing)
        .await;
    // The owner condemns and saves its intent; its create is stored at once but answered
    // late, and it is frozen with the call in flight. It wakes to the answer (or its
    // timeout), and its next step finds the lease gone.
    p.octo.hang_next_posts(1, Duration::from_secs(5));
    p.app.set_health(503);
    let created = p.octo.wait_for_created(1, T).await;
    da.signal("STOP");
    p.app.set_health(200);
    // The other node takes over and resolves the frozen node's intent: its marker search
    // adopts the deployment the frozen call made.
    let w = db
        .wait_watch("shop", "the other node finished the rollback", T, |w| {
            w["owner"] == p.names[b] && w["rollback"]["state"] == "succeeded"
        })
        .await;
    assert_eq!(w["rollback"]["deployment_id"], created[0]["Id"], "{w}");
    let mark = p.schema.audit_mark();
    let hook_a = p.hooks[a].requests().len();
    da.signal("CONT");
    p.assert_fenced((a, b), mark, hook_a, true).await;
}
