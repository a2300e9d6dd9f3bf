//! Scrape checks' history on PostgreSQL (the rules are those of `store::scrape`).

use postgres::Client;

use super::{begin, check_fence, Fence};
use crate::store::{Claimed, StoreError};

pub(in crate::store) fn claim(
    client: &mut Client,
    watch: &str,
    checks: &[(String, String)],
) -> Result<Vec<Claimed>, StoreError> {
    let mut tx = begin(client, false)?;
    let names: Vec<&str> = checks.iter().map(|(c, _)| c.as_str()).collect();
    tx.execute(
        "DELETE FROM scrape_history WHERE watch = $1 AND NOT (check_name = ANY($2))",
        &[&watch, &names],
    )?;
    let mut out = Vec::with_capacity(checks.len());
    for (check, fingerprint) in checks {
        let row = tx.query_opt(
            "SELECT fingerprint, points FROM scrape_history WHERE watch = $1 AND check_name = $2
             FOR UPDATE",
            &[&watch, check],
        )?;
        let claimed = match row.map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))) {
            Some((f, points)) if f == *fingerprint => {
                out.push(if points.is_empty() {
                    Claimed::Empty
                } else {
                    Claimed::Found(points)
                });
                continue;
            }
            Some(_) => Claimed::Changed,
            None => Claimed::Empty,
        };
        tx.execute(
            "INSERT INTO scrape_history (watch, check_name, fingerprint, points)
             VALUES ($1, $2, $3, '')
             ON CONFLICT (watch, check_name) DO UPDATE
             SET fingerprint = excluded.fingerprint, points = excluded.points",
            &[&watch, check, fingerprint],
        )?;
        out.push(claimed);
    }
    tx.commit()?;
    Ok(out)
}

pub(in crate::store) fn save(
    client: &mut Client,
    key: &(String, String, String, String),
    fence: &Fence,
) -> Result<bool, StoreError> {
    let (watch, check, fingerprint, points) = key;
    let mut tx = begin(client, false)?;
    check_fence(&mut tx, watch, fence)?;
    let n = tx.execute(
        "UPDATE scrape_history SET points = $4
         WHERE watch = $1 AND check_name = $2 AND fingerprint = $3",
        &[watch, check, fingerprint, points],
    )?;
    tx.commit()?;
    Ok(n > 0)
}

pub(in crate::store) fn retain(client: &mut Client, watches: &[String]) -> Result<(), StoreError> {
    client.execute(
        "DELETE FROM scrape_history WHERE NOT (watch = ANY($1))",
        &[&watches],
    )?;
    Ok(())
}
