//! Listing deployments in the fake Octopus: newest first, csv filters, paging by the links a
//! client follows, and 404s with an error body for unknown ids and routes.

use reqwest::StatusCode;

use crate::http::{get, ids, octopus_with_release};

#[tokio::test]
async fn deployments_are_listed_newest_first_filtered_and_paged() {
    let (o, release) = octopus_with_release().await;
    let t0 = chrono::Utc::now() - chrono::Duration::hours(1);
    let at = |mins| t0 + chrono::Duration::minutes(mins);
    // Added out of order: the list must follow Created, not insertion.
    let d3 = o.add_deployment_at("Projects-1", "Environments-1", &release, "Success", at(3));
    let d1 = o.add_deployment_at("Projects-1", "Environments-1", &release, "Success", at(1));
    let d2 = o.add_deployment_at("Projects-2", "Environments-1", &release, "Success", at(2));
    let d5 = o.add_deployment_at("Projects-1", "Environments-2", &release, "Failed", at(5));
    let d4 = o.add_deployment_at("Projects-1", "Environments-1", &release, "Success", at(4));

    let (_, all) = get(&o, "/api/Spaces-1/deployments").await;
    let newest_first = [&d5, &d4, &d3, &d2, &d1].map(String::as_str);
    assert_eq!(ids(&all), newest_first);
    assert_eq!(
        (
            all["ItemsPerPage"].as_u64(),
            all["NumberOfPages"].as_u64(),
            all["LastPageNumber"].as_u64()
        ),
        (Some(30), Some(1), Some(0))
    );
    assert!(
        all["Links"].get("Page.Next").is_none(),
        "single page has no Page.Next"
    );

    let mut seen = vec![];
    let mut link = "/api/Spaces-1/deployments?skip=0&take=2".to_owned();
    loop {
        let (status, page) = get(&o, &link).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (
                page["TotalResults"].as_u64(),
                page["ItemsPerPage"].as_u64(),
                page["NumberOfPages"].as_u64(),
                page["LastPageNumber"].as_u64()
            ),
            (Some(5), Some(2), Some(3), Some(2))
        );
        assert!(
            ["Self", "Template", "Page.All", "Page.Current", "Page.Last"]
                .iter()
                .all(|k| page["Links"][k].is_string()),
            "{page:#}"
        );
        seen.extend(ids(&page));
        match page["Links"].get("Page.Next") {
            Some(next) => link = next.as_str().unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    assert!(
        link.ends_with("skip=4&take=2"),
        "last followed link was {link}"
    );
    let (_, last) = get(&o, "/api/Spaces-1/deployments?skip=4&take=2").await;
    assert_eq!(
        (ids(&last), last["Links"].get("Page.Next")),
        (vec![d1.clone()], None)
    );
    let (_, beyond) = get(&o, "/api/Spaces-1/deployments?skip=10&take=2").await;
    assert!(ids(&beyond).is_empty());

    let cases: [(&str, Vec<&String>); 5] = [
        ("projects=Projects-1", vec![&d5, &d4, &d3, &d1]),
        (
            "projects=Projects-1,Projects-2&environments=Environments-1",
            vec![&d4, &d3, &d2, &d1],
        ),
        (
            "projects=Projects-2&projects=Projects-1&environments=Environments-2",
            vec![&d5],
        ),
        ("taskState=Failed", vec![&d5]),
        (
            "projects=Projects-1&environments=Environments-1&taskState=Success&take=1",
            vec![&d4],
        ),
    ];
    for (query, expected) in cases {
        let (_, page) = get(&o, &format!("/api/Spaces-1/deployments?{query}")).await;
        assert_eq!(
            ids(&page),
            expected.into_iter().map(String::as_str).collect::<Vec<_>>(),
            "{query}"
        );
    }
    let (status, body) = get(&o, "/api/Spaces-1/deployments?skip=minus-one").await;
    assert_eq!(
        (status, body["ErrorMessage"].is_string()),
        (StatusCode::BAD_REQUEST, true)
    );
}

#[tokio::test]
async fn unknown_ids_and_routes_answer_404_with_an_error_body() {
    let (o, _) = octopus_with_release().await;
    for path in [
        "/api/Spaces-1/deployments/Deployments-9",
        "/api/Spaces-1/releases/Releases-9",
        "/api/tasks/ServerTasks-9",
        "/api/Spaces-1/nonsense",
    ] {
        let (status, body) = get(&o, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(body["ErrorMessage"].is_string(), "{path}: {body}");
    }
}
