//! Scrape checks' history.

use super::*;

fn rows(fx: &Fixture, s: &Store) -> Vec<(String, String, String)> {
    fx.rows(
        s,
        "SELECT watch, check_name, points FROM scrape_history ORDER BY watch, check_name",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
    .collect()
}

both_backends! {
    fn saved_points_are_found_again_after_reopen(fx: &Fixture) {
        {
            let s = fx.open();
            let claimed = s
                .claim_scrape_history("shop", &[("errors", "f1"), ("latency", "f2")])
                .unwrap();
            assert_eq!(claimed, vec![Claimed::Empty, Claimed::Empty]);
            assert!(s
                .save_scrape_history("shop", "errors", "f1", "[1]")
                .unwrap());
            assert!(s
                .save_scrape_history("shop", "errors", "f1", "[1,2]")
                .unwrap());
        }
        let s = fx.open();
        let claimed = s
            .claim_scrape_history("shop", &[("errors", "f1"), ("latency", "f2")])
            .unwrap();
        assert_eq!(
            claimed,
            vec![Claimed::Found("[1,2]".into()), Claimed::Empty],
            "one row per check, the last save wins; a claimed row never saved is empty"
        );
        assert_eq!(rows(fx, &s).len(), 2);
    }

    fn another_fingerprint_discards_the_points_and_the_old_settings_cannot_write(fx: &Fixture) {
        let s = fx.open();
        s.claim_scrape_history("shop", &[("errors", "old")])
            .unwrap();
        s.save_scrape_history("shop", "errors", "old", "stale")
            .unwrap();
        assert_eq!(
            s.claim_scrape_history("shop", &[("errors", "new")])
                .unwrap(),
            vec![Claimed::Changed]
        );
        assert_eq!(
            s.claim_scrape_history("shop", &[("errors", "new")])
                .unwrap(),
            vec![Claimed::Empty],
            "discarded, not kept aside"
        );
        assert!(!s
            .save_scrape_history("shop", "errors", "old", "late")
            .unwrap());
        assert_eq!(rows(fx, &s)[0].2, "");
    }

    fn removed_checks_and_watches_are_purged_and_late_saves_do_not_return(fx: &Fixture) {
        let s = fx.open();
        for w in ["shop", "cart"] {
            s.claim_scrape_history(w, &[("a", "f"), ("b", "f")])
                .unwrap();
            for c in ["a", "b"] {
                s.save_scrape_history(w, c, "f", "x").unwrap();
            }
        }
        // Check b removed from shop: its row goes when shop's collectors start again.
        let claimed = s.claim_scrape_history("shop", &[("a", "f")]).unwrap();
        assert_eq!(claimed, vec![Claimed::Found("x".into())]);
        // cart removed from the config; its collector saves once more while stopping.
        s.retain_scrape_history(&["shop"]).unwrap();
        assert!(!s.save_scrape_history("cart", "a", "f", "late").unwrap());
        assert!(!s.save_scrape_history("shop", "b", "f", "late").unwrap());
        assert_eq!(rows(fx, &s), vec![("shop".into(), "a".into(), "x".into())]);
        // A watch without scrape checks keeps none.
        s.claim_scrape_history("shop", &[]).unwrap();
        assert!(rows(fx, &s).is_empty());
    }

    fn the_body_is_stored_as_given_whatever_it_holds(fx: &Fixture) {
        // Decoding (and surviving a garbled row) is the scrape check's business.
        let s = fx.open();
        s.claim_scrape_history("shop", &[("a", "f")]).unwrap();
        s.save_scrape_history("shop", "a", "f", "{not json")
            .unwrap();
        assert_eq!(
            s.claim_scrape_history("shop", &[("a", "f")]).unwrap(),
            vec![Claimed::Found("{not json".into())]
        );
    }
}
