//! Notifications from the real daemon: a condemned release that is rolled back is announced to
//! Slack and Alertmanager (fakes), twice each (condemned, then rolled back), and the Slack URL,
//! a secret, never shows up in the daemon's logs.

use std::time::Duration;

use serde_json::Value;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::common::sinks::{FakeAlertmanager, FakeSlack, SLACK_TOKEN};
use crate::common::wait_until;
use crate::harness::*;

const T: Duration = Duration::from_secs(20);

/// The `*Event*` field of a Slack message built by backstop.
fn slack_event(msg: &Value) -> String {
    msg["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["fields"].as_array().cloned().unwrap_or_default())
        .find_map(|f| {
            f["text"]
                .as_str()
                .and_then(|t| t.strip_prefix("*Event*\n"))
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn find<'a>(list: &'a [Value], what: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    list.iter()
        .find(|v| pred(v))
        .unwrap_or_else(|| panic!("no {what} among {list:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condemned_and_rolled_back_reach_slack_and_alertmanager() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let app = FakeApp::start().await;
    let slack = FakeSlack::start().await;
    let am = FakeAlertmanager::start().await;
    let setup = Setup::new();
    std::fs::write(
        setup.dir.path().join("slack-url"),
        format!("{}\n", slack.url()),
    )
    .unwrap();
    // Top-level tables must come before the first [[watch]].
    let sinks = format!(
        r#"
[notify.slack]
kind = "slack"
url_file = "slack-url"

[notify.am]
kind = "alertmanager"
url = "{am}"
labels = {{ team = "payments" }}
"#,
        am = am.url()
    );
    let watch = http_watch("shop", &app.url(), r#"notify = ["slack", "am"]"#)
        .replace("warmup = \"0s\"", "warmup = \"300ms\"");
    setup.write(&(setup.base(&octo.url()) + &sinks + &watch));
    let d = Daemon::start(&setup).await;

    assert_eq!(d.announce("shop", &r1).await, 202);
    d.wait_watch("shop", "release 1 verified", T, |w| {
        w["last_good_release"] == r1.as_str()
    })
    .await;
    assert!(
        slack.bodies().is_empty() && am.alerts().is_empty(),
        "a verified release is not announced"
    );

    app.set_health(503);
    assert_eq!(d.announce("shop", &r2).await, 202);
    octo.wait_for_created(1, T).await;
    app.set_health(200);

    wait_until("Slack got condemned and rolled_back", T, || {
        let events: Vec<String> = slack.bodies().iter().map(slack_event).collect();
        events.iter().any(|e| e == "condemned") && events.iter().any(|e| e == "rolled_back")
    })
    .await;
    wait_until("Alertmanager got condemned and rolled_back", T, || {
        let alerts = am.alerts();
        let has = |e: &str| alerts.iter().any(|a| a["labels"]["event"] == e);
        has("condemned") && has("rolled_back")
    })
    .await;

    let messages = slack.bodies();
    let condemned = find(&messages, "condemned Slack message", |m| {
        slack_event(m) == "condemned"
    });
    let text = condemned["text"].as_str().unwrap();
    assert!(text.contains("shop") && text.contains(&r2), "{text}");
    let all = condemned.to_string();
    assert!(all.contains("*health*"), "the check is shown: {all}");
    assert!(all.contains("`503` *fail*"), "its last values: {all}");
    assert!(
        all.contains(&format!("*Target*\\n{r1}")),
        "the target: {all}"
    );

    let alerts = am.alerts();
    let condemned = find(&alerts, "condemned alert", |a| {
        a["labels"]["event"] == "condemned"
    });
    assert_eq!(condemned["labels"]["alertname"], "BackstopDecision");
    assert_eq!(condemned["labels"]["watch"], "shop");
    assert_eq!(condemned["labels"]["release"], r2.as_str());
    assert_eq!(condemned["labels"]["severity"], "warning");
    assert_eq!(condemned["labels"]["team"], "payments");
    assert!(condemned["annotations"]["verdict_id"].is_string());
    let rolled_back = find(&alerts, "rolled_back alert", |a| {
        a["labels"]["event"] == "rolled_back"
    });
    assert_eq!(rolled_back["labels"]["severity"], "info");

    let series = |sink: &str, event: &str| {
        format!(r#"backstop_notifications_total{{event="{event}",result="ok",sink="{sink}"}} 1"#)
    };
    let deadline = std::time::Instant::now() + T;
    loop {
        let m = d.metrics().await;
        let all = ["slack", "am"]
            .iter()
            .all(|s| m.contains(&series(s, "condemned")) && m.contains(&series(s, "rolled_back")));
        if all {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "metrics:\n{m}");
        tokio::time::sleep(crate::common::POLL).await;
    }
    let logs = d.logs();
    assert!(
        !logs.contains(SLACK_TOKEN),
        "the Slack URL leaked into the logs:\n{logs}"
    );
}
