//! `control_query` and its keys: defaults, the URL each kind takes, and every mistake named
//! by its key.

use std::time::Duration;

use crate::config::one_check::{check, errors};

const PROM: &str =
    "kind = \"prometheus\"\nurl = \"http://prom:9090\"\nquery = \"errors\"\nmax = 0.05\n";
const SCRAPE: &str =
    "kind = \"scrape\"\nurl = \"http://app/metrics\"\nmetric = \"errors\"\nmax = 0.05\n";

#[test]
fn a_prometheus_control_defaults_to_the_checks_own_prometheus() {
    let c = check(&format!(
        "{PROM}control_query = 'sum(rate(errors_total{{region=\"eu\"}}[1m]))'\n"
    ));
    let ctl = c.control.expect("control");
    assert_eq!(ctl.url, "http://prom:9090");
    assert_eq!(ctl.query, "sum(rate(errors_total{region=\"eu\"}[1m]))");
    assert_eq!(ctl.tolerance, 0.5);
    // No ratio rule, yet a baseline window: the control compares moves from baselines.
    assert_eq!(ctl.baseline_window, Duration::from_secs(600));
}

#[test]
fn the_keys_are_taken_as_given() {
    let c = check(&format!(
        "{PROM}baseline_window = \"30m\"\ncontrol_query = \"fleet_errors\"\ncontrol_url = \"http://other:9090/\"\ncontrol_tolerance = 0.25\n"
    ));
    let ctl = c.control.expect("control");
    assert_eq!(ctl.url, "http://other:9090");
    assert_eq!(ctl.tolerance, 0.25);
    assert_eq!(ctl.baseline_window, Duration::from_secs(1800));
}

#[test]
fn a_scrape_control_needs_a_prometheus_url() {
    let e = errors(&format!("{SCRAPE}control_query = \"fleet_errors\"\n"));
    assert!(
        e.contains("control_url") && e.contains("is required"),
        "{e}"
    );
    let c = check(&format!(
        "{SCRAPE}control_query = \"fleet_errors\"\ncontrol_url = \"http://prom:9090\"\n"
    ));
    assert_eq!(c.control.expect("control").url, "http://prom:9090");
}

#[test]
fn mistakes_are_named_by_their_key() {
    let e = errors(&format!("{PROM}control_query = \"sum(rate(x[1m])\"\n"));
    assert!(
        e.contains("control_query") && e.contains("not valid PromQL"),
        "{e}"
    );
    for bad in ["1", "1.5", "-0.1"] {
        let e = errors(&format!(
            "{PROM}control_query = \"x\"\ncontrol_tolerance = {bad}\n"
        ));
        assert!(
            e.contains("control_tolerance") && e.contains("outside [0, 1)"),
            "{e}"
        );
    }
    let e = errors(&format!(
        "{PROM}control_query = \"x\"\ncontrol_url = \"prom:9090\"\n"
    ));
    assert!(e.contains("control_url") && e.contains("http://"), "{e}");
    for key in ["control_url = \"http://p\"", "control_tolerance = 0.3"] {
        let e = errors(&format!("{PROM}{key}\n"));
        assert!(e.contains("has no effect without control_query"), "{e}");
    }
}

#[test]
fn http_and_alert_checks_have_no_value_to_control() {
    let e = errors("kind = \"http\"\nurl = \"http://app/health\"\ncontrol_query = \"x\"\n");
    assert!(
        e.contains("control_query") && e.contains("is not a setting of http checks"),
        "{e}"
    );
    let e = errors(
        "kind = \"alert\"\nsource = \"prometheus\"\nurl = \"http://prom:9090\"\nlabels = { service = \"shop\" }\ncontrol_tolerance = 0.5\n",
    );
    assert!(
        e.contains("control_tolerance") && e.contains("is not a setting of alert checks"),
        "{e}"
    );
}
