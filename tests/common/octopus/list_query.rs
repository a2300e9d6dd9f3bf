//! `GET /deployments` query parameters: csv filters and paging, and the `ResourceCollection`
//! envelope a page of results goes out in.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::errors::Rejection;
use super::model::Deployment;
use super::state::State;

/// The page size when the query names none (the server's default).
const DEFAULT_TAKE: usize = 30;

/// `GET /deployments` parameters: csv filters (repeated keys add up) and the page wanted.
pub(super) struct ListQuery {
    filters: Vec<(String, Vec<String>)>,
    pub(super) skip: usize,
    pub(super) take: usize,
}

const FILTERS: [&str; 7] = [
    "ids",
    "projects",
    "environments",
    "channels",
    "tenants",
    "taskState",
    "partialName",
];

impl ListQuery {
    pub(super) fn parse(q: &[(String, String)]) -> Result<ListQuery, Rejection> {
        let mut lq = ListQuery {
            filters: vec![],
            skip: 0,
            take: DEFAULT_TAKE,
        };
        for (k, v) in q {
            let k = k.strip_prefix("paginationRequest.").unwrap_or(k);
            if k == "skip" || k == "take" {
                let n = v.parse().map_err(|_| {
                    let error = format!("The value '{v}' is not valid for {k}.");
                    (
                        StatusCode::BAD_REQUEST,
                        "There was a problem with your request.",
                        vec![error],
                    )
                })?;
                *(if k == "skip" {
                    &mut lq.skip
                } else {
                    &mut lq.take
                }) = n;
            } else if FILTERS.contains(&k) {
                let values = v
                    .split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(String::from);
                match lq.filters.iter_mut().find(|(name, _)| name == k) {
                    Some((_, existing)) => existing.extend(values),
                    None => lq.filters.push((k.to_owned(), values.collect())),
                }
            }
        }
        Ok(lq)
    }

    /// Every non-empty filter must match one of its values (ids and states case-insensitively).
    pub(super) fn matches(&self, st: &State, d: &Deployment) -> bool {
        self.filters
            .iter()
            .filter(|(_, vs)| !vs.is_empty())
            .all(|(name, vs)| {
                let field = match name.as_str() {
                    "ids" => &d.id,
                    "projects" => &d.project,
                    "environments" => &d.environment,
                    "channels" => &d.channel,
                    "tenants" => d.fields["TenantId"].as_str().unwrap_or_default(),
                    "taskState" => st.task_state_of(d),
                    _ => {
                        let name = format!("Deploy to {}", d.environment).to_lowercase();
                        return vs.iter().any(|x| name.contains(&x.to_lowercase()));
                    }
                };
                vs.iter().any(|x| x.eq_ignore_ascii_case(field))
            })
    }

    /// The `ResourceCollection` envelope around one page of `total` matches.
    pub(super) fn collection(&self, space: &str, total: usize, items: Vec<Value>) -> Value {
        let (skip, take) = (self.skip, self.take);
        let pages = if take == 0 {
            1
        } else {
            total.div_ceil(take).max(1)
        };
        let base = format!("/api/{space}/deployments");
        let query: String = self
            .filters
            .iter()
            .map(|(k, vs)| format!("&{k}={}", vs.join(",")))
            .collect();
        let page = |skip: usize, take: usize| format!("{base}?skip={skip}&take={take}{query}");
        let mut links = json!({
            "Self": page(skip, take),
            "Template": format!("{base}{{?skip,take,ids,projects,environments,tenants,channels,taskState,partialName}}"),
            "Page.All": page(0, i32::MAX as usize), "Page.Current": page(skip, take),
            "Page.Last": page((pages - 1) * take, take),
        });
        if take > 0 && skip + take < total {
            links["Page.Next"] = json!(page(skip + take, take));
        }
        json!({
            "ItemType": "Deployment", "TotalResults": total, "ItemsPerPage": take, "NumberOfPages": pages,
            "LastPageNumber": pages - 1, "Items": items, "Links": links,
            "Id": null, "LastModifiedOn": null, "LastModifiedBy": null,
        })
    }
}
