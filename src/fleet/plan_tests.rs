use super::*;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn node(name: &str, watches: &[&str], alive: bool) -> Node {
    Node {
        name: name.into(),
        watches: set(watches),
        alive,
    }
}

fn lease(owner: &str, epoch: i64, live: bool) -> Lease {
    Lease {
        owner: Some(owner.into()),
        epoch,
        live,
        expires_in: if live {
            std::time::Duration::from_secs(2)
        } else {
            std::time::Duration::ZERO
        },
    }
}

fn watches(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("svc-{i:04}")).collect()
}

#[test]
fn weight_is_stable_across_builds() {
    // Pinned values: every node of a fleet, whatever its binary, must compute these.
    assert_eq!(weight("shop", "node-a"), weight("shop", "node-a"));
    assert_ne!(weight("shop", "node-a"), weight("shop", "node-b"));
    assert_ne!(
        weight("ab", "c"),
        weight("a", "bc"),
        "the separator matters"
    );
    // Computed independently (FNV-1a + SplitMix64 finaliser in Python).
    assert_eq!(weight("shop", "node-a"), 0xe5e7_269d_28f4_4e5b);
}

#[test]
fn placement_spreads_watches_evenly() {
    let all: Vec<String> = watches(3000);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let nodes = vec![
        node("a", &refs, true),
        node("b", &refs, true),
        node("c", &refs, true),
    ];
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for w in &all {
        *count.entry(owner_of(w, &nodes).unwrap()).or_default() += 1;
    }
    for (n, c) in &count {
        assert!((850..=1150).contains(c), "node {n} owns {c} of 3000");
    }
}

#[test]
fn a_joining_node_moves_only_what_it_wins() {
    let all: Vec<String> = watches(3000);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let two = vec![node("a", &refs, true), node("b", &refs, true)];
    let mut three = two.clone();
    three.push(node("c", &refs, true));
    let mut moved = 0;
    for w in &all {
        let before = owner_of(w, &two).unwrap();
        let after = owner_of(w, &three).unwrap();
        if before != after {
            assert_eq!(after, "c", "{w} moved between old nodes");
            moved += 1;
        }
    }
    assert!((850..=1150).contains(&moved), "{moved} of 3000 moved");
}

#[test]
fn dead_nodes_and_nodes_without_the_watch_never_win() {
    let nodes = vec![
        node("a", &["shop"], false),
        node("b", &["other"], true),
        node("c", &["shop"], true),
    ];
    assert_eq!(owner_of("shop", &nodes), Some("c"));
    assert_eq!(owner_of("nowhere", &nodes), None);
}

#[test]
fn the_winner_acquires_a_free_watch() {
    let nodes = vec![node("a", &["shop"], true)];
    let moves = plan(
        "a",
        &set(&["shop"]),
        &nodes,
        &BTreeMap::new(),
        &BTreeMap::new(),
    );
    assert_eq!(moves, vec![Move::Acquire("shop".into())]);
}

#[test]
fn a_node_before_its_first_heartbeat_counts_itself() {
    let moves = plan(
        "a",
        &set(&["shop"]),
        &[],
        &BTreeMap::new(),
        &BTreeMap::new(),
    );
    assert_eq!(moves, vec![Move::Acquire("shop".into())]);
}

#[test]
fn a_live_lease_of_another_node_is_never_taken() {
    // "a" wins shop once "b" is dead, but b's lease is still live: wait for it to expire.
    let nodes = vec![node("a", &["shop"], true), node("b", &["shop"], false)];
    let leases = BTreeMap::from([("shop".to_string(), lease("b", 4, true))]);
    let moves = plan("a", &set(&["shop"]), &nodes, &leases, &BTreeMap::new());
    assert!(moves.is_empty(), "{moves:?}");
    let leases = BTreeMap::from([("shop".to_string(), lease("b", 4, false))]);
    let moves = plan("a", &set(&["shop"]), &nodes, &leases, &BTreeMap::new());
    assert_eq!(moves, vec![Move::Acquire("shop".into())]);
}

#[test]
fn the_holder_releases_to_a_joining_winner() {
    let all = watches(50);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let nodes = vec![node("a", &refs, true), node("b", &refs, true)];
    // "a" holds everything (it was alone); now b is live.
    let held: BTreeMap<String, i64> = all.iter().map(|w| (w.clone(), 1)).collect();
    let leases: BTreeMap<String, Lease> = all
        .iter()
        .map(|w| (w.clone(), lease("a", 1, true)))
        .collect();
    let configured: BTreeSet<String> = all.iter().cloned().collect();
    let moves = plan("a", &configured, &nodes, &leases, &held);
    let released: Vec<&String> = moves
        .iter()
        .map(|m| match m {
            Move::Release(w) => w,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert!(!released.is_empty() && released.len() < 50);
    for w in released {
        assert_eq!(owner_of(w, &nodes), Some("b"));
    }
    // b waits for a's live leases instead of taking them.
    let b_moves = plan("b", &configured, &nodes, &leases, &BTreeMap::new());
    assert!(b_moves.is_empty(), "{b_moves:?}");
}

#[test]
fn a_lease_taken_by_another_node_or_epoch_is_lost_first() {
    let nodes = vec![
        node("a", &["shop", "cart"], true),
        node("b", &["shop", "cart"], true),
    ];
    let held = BTreeMap::from([("shop".to_string(), 3), ("cart".to_string(), 2)]);
    let leases = BTreeMap::from([
        ("shop".to_string(), lease("b", 4, true)),
        ("cart".to_string(), lease("a", 5, true)),
    ]);
    let moves = plan("a", &set(&["shop", "cart"]), &nodes, &leases, &held);
    assert_eq!(
        &moves[..2],
        &[Move::Lost("cart".into()), Move::Lost("shop".into())]
    );
}

#[test]
fn a_watch_removed_from_the_config_is_released() {
    let nodes = vec![node("a", &[], true)];
    let held = BTreeMap::from([("gone".to_string(), 1)]);
    let leases = BTreeMap::from([("gone".to_string(), lease("a", 1, true))]);
    let moves = plan("a", &set(&[]), &nodes, &leases, &held);
    assert_eq!(moves, vec![Move::Release("gone".into())]);
}

#[test]
fn unowned_lists_configured_watches_without_a_live_lease() {
    let nodes = vec![
        node("a", &["shop", "cart"], true),
        node("b", &["db"], false),
    ];
    let leases = BTreeMap::from([
        ("shop".to_string(), lease("a", 1, true)),
        ("cart".to_string(), lease("a", 1, false)),
    ]);
    assert_eq!(unowned(&nodes, &leases), set(&["cart"]));
}

#[test]
fn a_takeover_is_due_when_the_owners_lease_expires() {
    let nodes = vec![
        node("a", &["shop", "cart"], true),
        node("b", &["shop", "cart"], true),
    ];
    let configured = set(&["shop", "cart"]);
    // b holds both; a would win each of them without b.
    let mut leases = BTreeMap::from([
        ("shop".to_string(), lease("b", 4, true)),
        ("cart".to_string(), lease("b", 2, true)),
    ]);
    leases.get_mut("shop").unwrap().expires_in = std::time::Duration::from_millis(700);
    assert_eq!(
        takeover_due("a", &configured, &nodes, &leases),
        Some(std::time::Duration::from_millis(700))
    );
    // Nothing is due from expired leases (taken at once), this node's own, or none at all.
    let expired = BTreeMap::from([("shop".to_string(), lease("b", 4, false))]);
    assert_eq!(takeover_due("a", &configured, &nodes, &expired), None);
    let mine = BTreeMap::from([("shop".to_string(), lease("a", 4, true))]);
    assert_eq!(takeover_due("a", &configured, &nodes, &mine), None);
    assert_eq!(
        takeover_due("a", &configured, &nodes, &BTreeMap::new()),
        None
    );
    // With a third node that would win without b, a waits for nothing.
    let three = vec![
        node("a", &["shop"], true),
        node("b", &["shop"], true),
        node("c", &["shop"], true),
    ];
    let only_shop = BTreeMap::from([("shop".to_string(), lease("b", 4, true))]);
    let due_a = takeover_due("a", &set(&["shop"]), &three, &only_shop);
    let due_c = takeover_due("c", &set(&["shop"]), &three, &only_shop);
    assert!(
        due_a.is_some() != due_c.is_some(),
        "exactly one successor waits"
    );
}
