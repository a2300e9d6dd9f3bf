//! The shared board of watch statuses: watch actors write their entry, the API reads pages of
//! summaries and single details.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{FleetView, StatusDocument, WatchState, WatchStatus, WatchSummary};

/// Watches in a `GET /v1/status` page when the caller sets no `limit`.
pub const DEFAULT_LIMIT: usize = 500;
/// Most watches in one `GET /v1/status` page.
pub const MAX_LIMIT: usize = 5000;

/// A watch's detail and its summary, made when the entry is written so that a page of
/// summaries copies no check track. Shared, so the lock is held only to clone pointers.
struct Entry {
    detail: Arc<WatchStatus>,
    summary: Arc<WatchSummary>,
}

impl Entry {
    fn new(detail: WatchStatus) -> Self {
        Entry {
            summary: Arc::new(WatchSummary::of(&detail)),
            detail: Arc::new(detail),
        }
    }
}

/// Shared, cheap-to-clone board of watch statuses. The lock is never held across `.await`.
#[derive(Clone, Default)]
pub struct StatusBoard {
    watches: Arc<Mutex<BTreeMap<String, Entry>>>,
    fleet: Arc<Mutex<Option<FleetView>>>,
}

impl StatusBoard {
    /// Replaces a watch's entry.
    pub fn set(&self, status: WatchStatus) {
        let entry = Entry::new(status);
        let name = entry.detail.name.clone();
        // The old entry (samples and all) is freed after the lock is released.
        let old = self.lock().insert(name, entry);
        drop(old);
    }

    /// Edits a watch's entry in place, creating it if missing.
    pub fn update(&self, name: &str, f: impl FnOnce(&mut WatchStatus)) {
        let mut map = self.lock();
        let entry = map
            .entry(name.to_string())
            .or_insert_with(|| Entry::new(WatchStatus::new(name)));
        f(Arc::make_mut(&mut entry.detail));
        entry.summary = Arc::new(WatchSummary::of(&entry.detail));
    }

    pub fn remove(&self, name: &str) {
        let old = self.lock().remove(name);
        drop(old);
    }

    /// One watch's detail.
    pub fn get(&self, name: &str) -> Option<WatchStatus> {
        let detail = self.lock().get(name).map(|e| e.detail.clone());
        detail.map(Arc::unwrap_or_clone)
    }

    /// Every watch's summary, sorted by name (the dashboard's overview).
    pub fn snapshot(&self) -> StatusDocument {
        self.page(None, usize::MAX)
    }

    /// Up to `limit` summaries of the watches named after `after` (exclusive), sorted by name;
    /// `next` is set when more follow.
    pub fn page(&self, after: Option<&str>, limit: usize) -> StatusDocument {
        let (page, more) = {
            let map = self.lock();
            let from = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut rest = map
                .range::<str, _>((from, Bound::Unbounded))
                .map(|(_, e)| e.summary.clone());
            let page: Vec<Arc<WatchSummary>> = rest.by_ref().take(limit).collect();
            (page, rest.next().is_some())
        };
        let next = more.then(|| page.last().map(|w| w.name.clone())).flatten();
        StatusDocument {
            watches: page.into_iter().map(Arc::unwrap_or_clone).collect(),
            fleet: self.fleet.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            next,
        }
    }

    /// Replaces the fleet view (fleet mode only).
    pub fn set_fleet(&self, view: FleetView) {
        *self.fleet.lock().unwrap_or_else(|e| e.into_inner()) = Some(view);
    }

    /// One line for logs and systemd `STATUS=`, e.g. "watching 3 services, 1 observing".
    pub fn summary(&self) -> String {
        let map = self.lock();
        let count = |s: WatchState| map.values().filter(|e| e.summary.state == s).count();
        let mut line = format!(
            "watching {} service{}, {} observing",
            map.len(),
            if map.len() == 1 { "" } else { "s" },
            count(WatchState::Observing)
        );
        for (state, label) in [
            (WatchState::RollingBack, "rolling back"),
            (WatchState::Failed, "failed"),
            (WatchState::Paused, "paused"),
        ] {
            let n = count(state);
            if n > 0 {
                line.push_str(&format!(", {n} {label}"));
            }
        }
        line
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding the lock leaves consistent data (single-field writes).
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::observation::Tracker;
    use crate::judge::{Outcome, Rule};

    fn board(names: &[&str]) -> StatusBoard {
        let board = StatusBoard::default();
        for n in names {
            board.set(WatchStatus::new(n));
        }
        board
    }

    fn names(doc: &StatusDocument) -> Vec<&str> {
        doc.watches.iter().map(|w| w.name.as_str()).collect()
    }

    #[test]
    fn pages_follow_the_names_and_next_is_the_cursor() {
        let b = board(&["e", "a", "d", "c", "b"]);
        let p1 = b.page(None, 2);
        assert_eq!(names(&p1), ["a", "b"]);
        assert_eq!(p1.next.as_deref(), Some("b"));
        let p2 = b.page(p1.next.as_deref(), 2);
        assert_eq!(names(&p2), ["c", "d"]);
        assert_eq!(p2.next.as_deref(), Some("d"));
        let p3 = b.page(p2.next.as_deref(), 2);
        assert_eq!(names(&p3), ["e"]);
        assert_eq!(p3.next, None, "the last page has no cursor");
    }

    #[test]
    fn a_page_that_ends_exactly_at_the_last_watch_has_no_next() {
        let b = board(&["a", "b"]);
        assert_eq!(b.page(None, 2).next, None);
        assert_eq!(names(&b.page(None, 5)), ["a", "b"]);
        assert_eq!(b.snapshot().next, None);
    }

    #[test]
    fn after_is_exclusive_and_need_not_name_a_watch() {
        let b = board(&["api", "cart", "shop"]);
        assert_eq!(names(&b.page(Some("cart"), 10)), ["shop"]);
        // A watch removed between two pages: the cursor still places the next page.
        assert_eq!(names(&b.page(Some("b"), 10)), ["cart", "shop"]);
        assert!(b.page(Some("zzz"), 10).watches.is_empty());
        assert_eq!(b.page(Some("zzz"), 10).next, None);
    }

    #[test]
    fn the_fleet_is_on_every_page() {
        let b = board(&["a", "b"]);
        b.set_fleet(FleetView {
            node: "n1".into(),
            nodes: vec![],
            unowned: vec![],
        });
        assert!(b.page(None, 1).fleet.is_some());
        assert!(b.page(Some("a"), 1).fleet.is_some());
    }

    #[test]
    fn summaries_carry_no_samples_and_details_keep_them() {
        let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let mut tracker = Tracker::new([("health", &[Rule::Max(1.0)][..], 3)], 3);
        tracker.record(
            0,
            crate::judge::observation::Sample {
                at,
                value: Some(0.5),
                outcome: Outcome::Pass,
                mixed: false,
                note: None,
                alerts: vec![],
            },
        );
        let b = StatusBoard::default();
        b.update("shop", |w| {
            w.state = WatchState::Observing;
            w.observation = Some(super::super::ObservationView {
                id: "obs-1".into(),
                release: "R2".into(),
                version: None,
                deployment_id: None,
                kind: crate::model::ObservationKind::Deployment,
                source: crate::model::Source::Announce,
                deployed_at: at,
                judging_from: at,
                window_ends: at,
                rounds: 1,
                planned_rounds: 9,
                checks: tracker.checks.clone(),
                outcome: Default::default(),
                failure: None,
            });
            w.last_verdict = Some(crate::judge::observation::Verdict {
                verdict: crate::judge::observation::VerdictKind::Verified,
                release: "R1".into(),
                version: None,
                deployment_id: None,
                observation_id: "obs-0".into(),
                decided_at: at,
                summary: "every check passed".into(),
                checks: tracker.checks.clone(),
                action: None,
            });
        });
        let doc = serde_json::to_value(b.snapshot()).unwrap();
        let w = &doc["watches"][0];
        assert_eq!(w["state"], "observing");
        assert_eq!(w["observation"]["id"], "obs-1");
        assert_eq!(w["observation"]["rounds"], 1);
        assert_eq!(w["observation"]["planned_rounds"], 9);
        assert!(w["observation"].get("checks").is_none(), "{w}");
        assert_eq!(w["last_verdict"]["observation_id"], "obs-0");
        assert_eq!(w["last_verdict"]["verdict"], "verified");
        assert!(w["last_verdict"].get("checks").is_none(), "{w}");
        assert!(!doc.to_string().contains("samples"), "{doc}");
        assert!(doc["next"].is_null());
        let detail = serde_json::to_value(b.get("shop").unwrap()).unwrap();
        assert_eq!(
            detail["observation"]["checks"][0]["samples"][0]["value"],
            0.5
        );
    }

    #[test]
    fn an_update_refreshes_the_summary() {
        let b = board(&["shop"]);
        b.update("shop", |w| w.state = WatchState::Paused);
        assert_eq!(b.snapshot().watches[0].state, WatchState::Paused);
        assert_eq!(b.summary(), "watching 1 service, 0 observing, 1 paused");
        b.remove("shop");
        assert!(b.get("shop").is_none());
        assert!(b.snapshot().watches.is_empty());
    }
}
