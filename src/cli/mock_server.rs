//! `trackly-export mock-server`: the fault-injecting mock API as a standalone process.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use trackly_mock::{DatasetConfig, Drift, DriftKind, Faults, Live, MockConfig, MockServer};

use super::flags::MockServerArgs;

/// Turns the flags into a [`MockConfig`], rejecting malformed drift specs.
pub fn config(args: &MockServerArgs) -> anyhow::Result<MockConfig> {
    for (name, rate) in [
        ("--signups-per-sec", args.signups_per_sec),
        ("--deletes-per-sec", args.deletes_per_sec),
    ] {
        if !(rate.is_finite() && rate >= 0.0) {
            bail!("{name} {rate} is not a rate of zero or more per second");
        }
    }
    for (name, p) in [
        ("--p-500", args.p_500),
        ("--p-502", args.p_502),
        ("--p-503", args.p_503),
        ("--p-truncate", args.p_truncate),
        ("--p-reset", args.p_reset),
        ("--p-slow", args.p_slow),
    ] {
        if !(0.0..=1.0).contains(&p) {
            bail!("{name} {p} is not a probability between 0 and 1");
        }
    }
    let drift = args
        .drift
        .iter()
        .map(|spec| parse_drift(spec))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(MockConfig {
        dataset: DatasetConfig {
            seed: args.seed,
            contacts: args.contacts,
            lists: args.lists,
            ..DatasetConfig::default()
        },
        api_key: args.api_key.clone(),
        faults: Faults {
            latency: Duration::from_millis(args.latency_ms),
            latency_jitter: Duration::from_millis(args.jitter_ms),
            rate_limit_rps: args.rate_limit,
            p_500: args.p_500,
            p_502: args.p_502,
            p_503: args.p_503,
            p_truncate: args.p_truncate,
            p_reset: args.p_reset,
            p_slow: args.p_slow,
            slow_body: Duration::from_millis(args.slow_body_ms),
            drift,
            fault_seed: args.fault_seed,
            shuffle_ties: args.shuffle_ties,
            total_jitter: args.total_jitter,
            replica_lag: args.replica_lag_ms.map(Duration::from_millis),
            live: (args.signups_per_sec > 0.0 || args.deletes_per_sec > 0.0).then_some(Live {
                signups_per_sec: args.signups_per_sec,
                deletes_per_sec: args.deletes_per_sec,
            }),
            past_end_status: args.past_end_status,
            damaged: Vec::new(),
        },
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
    })
}

/// `insert:N@K` or `delete:N@K`: N contacts after the K-th request.
fn parse_drift(spec: &str) -> anyhow::Result<Drift> {
    let parse = || -> Option<Drift> {
        let (kind, rest) = spec.split_once(':')?;
        let (count, after) = rest.split_once('@')?;
        let count: usize = count.parse().ok()?;
        let after_request: u64 = after.parse().ok()?;
        let kind = match kind {
            "insert" => DriftKind::Insert(count),
            "delete" => DriftKind::Delete(count),
            _ => return None,
        };
        Some(Drift {
            after_request,
            kind,
        })
    };
    parse().with_context(|| {
        format!("--drift {spec:?}: expected insert:N@K or delete:N@K (N contacts after request K)")
    })
}

/// Runs the server until Ctrl-C.
pub async fn run(args: &MockServerArgs) -> anyhow::Result<()> {
    let config = config(args)?;
    let contacts = config.dataset.contacts;
    let server = MockServer::start(config)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    // The URL goes to stdout alone so scripts can read it; the rest is for people.
    println!("{}", server.url());
    eprintln!(
        "trackly-mock: {contacts} contacts at {}/v2/contacts (X-Api-Key required); ground truth at {}/_mock/ground_truth, counters at {}/_mock/stats. Ctrl-C stops.",
        server.url(),
        server.url(),
        server.url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_specs_parse_or_explain_themselves() {
        assert_eq!(
            parse_drift("insert:500@10").unwrap(),
            Drift {
                after_request: 10,
                kind: DriftKind::Insert(500)
            }
        );
        assert!(parse_drift("delete:3@0").is_ok());
        let err = parse_drift("remove:3").unwrap_err().to_string();
        assert!(err.contains("insert:N@K"), "{err}");
    }
}
