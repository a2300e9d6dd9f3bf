//! How far back in time a PromQL query reads: the largest range selector or subquery range,
//! plus its offset, nested subqueries adding up. A sample whose look-back reaches before the
//! deployment mixes two releases.

use std::time::Duration;

use promql_parser::parser::{self, Expr, Offset};

/// The look-back of a query, or why it is not valid PromQL.
pub fn lookback(query: &str) -> Result<Duration, String> {
    let expr = parser::parse(query)?;
    Ok(of(&expr))
}

fn offset(o: &Option<Offset>, base: Duration) -> Duration {
    match o {
        Some(Offset::Pos(d)) => base + *d,
        // A negative offset looks forward: it shortens the reach back.
        Some(Offset::Neg(d)) => base.saturating_sub(*d),
        None => base,
    }
}

fn of(e: &Expr) -> Duration {
    match e {
        Expr::MatrixSelector(m) => offset(&m.vs.offset, m.range),
        Expr::VectorSelector(v) => offset(&v.offset, Duration::ZERO),
        Expr::Subquery(s) => offset(&s.offset, s.range + of(&s.expr)),
        Expr::Aggregate(a) => {
            let p = a.param.as_deref().map(of).unwrap_or_default();
            of(&a.expr).max(p)
        }
        Expr::Unary(u) => of(&u.expr),
        Expr::Paren(p) => of(&p.expr),
        Expr::Binary(b) => of(&b.lhs).max(of(&b.rhs)),
        Expr::Call(c) => c.args.args.iter().map(|a| of(a)).max().unwrap_or_default(),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn range_selectors_offsets_and_subqueries() {
        assert_eq!(lookback("up").unwrap(), s(0));
        assert_eq!(lookback("rate(http_requests_total[20s])").unwrap(), s(20));
        assert_eq!(
            lookback("sum(rate(errors_total[1m])) / sum(rate(requests_total[5m] offset 1m))")
                .unwrap(),
            s(360)
        );
        assert_eq!(
            lookback("max_over_time(rate(x_total[1m])[10m:30s])").unwrap(),
            s(660),
            "a subquery reaches back its range plus what its inner query reads"
        );
        assert_eq!(
            lookback("histogram_quantile(0.9, sum by (le) (rate(h_bucket[2m])))").unwrap(),
            s(120)
        );
        assert_eq!(lookback("rate(x[5m] offset -1m)").unwrap(), s(240));
        assert_eq!(lookback("(-rate(x[30s]))").unwrap(), s(30));
        assert_eq!(lookback("topk(3, rate(x[45s]))").unwrap(), s(45));
    }

    #[test]
    fn invalid_promql_is_an_error_with_the_parser_message() {
        let e = lookback("rate(x[5m]").unwrap_err();
        assert!(!e.is_empty());
        assert!(lookback("sum(").is_err());
    }
}
