//! `trackly-export mock-server`: the fault-injecting mock API as a standalone process.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use trackly_mock::{
    ContentCoding, DatasetConfig, Drift, DriftKind, Faults, Live, MockConfig, MockServer,
};

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
    if args.lists_per_page == Some(0) {
        bail!("--lists-per-page must be at least 1");
    }
    let drift = args
        .drift
        .iter()
        .map(|spec| parse_drift(spec))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let compression = args
        .compress
        .iter()
        .map(|name| name.parse::<ContentCoding>().context("--compress"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bandwidth = args.bandwidth.as_deref().map(parse_bandwidth).transpose()?;
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
            suspended: args.suspended,
            ..Faults::default()
        },
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
        lists_per_page: args.lists_per_page,
        lists_churn: args.lists_churn,
        compression,
        bandwidth,
    })
}

/// `100mbit`, `1.5gbit`, `800kbit`, `64bit` (bits per second, SI) or `12MB`, `500kB`, `1GB`,
/// `2000B` (bytes per second, SI), to bytes per second.
fn parse_bandwidth(text: &str) -> anyhow::Result<u64> {
    let explain = || {
        format!("--bandwidth {text:?}: expected a rate such as 100mbit (bits/s) or 12MB (bytes/s)")
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .with_context(explain)?;
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().ok().with_context(explain)?;
    let bytes_per_unit = match unit.trim() {
        u if u.eq_ignore_ascii_case("bit") => 1.0 / 8.0,
        u if u.eq_ignore_ascii_case("kbit") => 1e3 / 8.0,
        u if u.eq_ignore_ascii_case("mbit") => 1e6 / 8.0,
        u if u.eq_ignore_ascii_case("gbit") => 1e9 / 8.0,
        "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => bail!("{}", explain()),
    };
    let rate = number * bytes_per_unit;
    if !(rate.is_finite() && rate >= 1.0 && rate <= u64::MAX as f64) {
        bail!("--bandwidth {text:?} must be at least one byte per second");
    }
    Ok(rate.round() as u64)
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
    super::progress::print(format_args!("{}", server.url()));
    super::progress::say(format_args!(
        "trackly-mock: {contacts} contacts at {}/v2/contacts and their lists at {}/v2/lists (X-Api-Key required); ground truth at {}/_mock/ground_truth, counters at {}/_mock/stats. Ctrl-C stops.",
        server.url(),
        server.url(),
        server.url(),
        server.url()
    ));
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

    #[test]
    fn bandwidths_read_as_bits_or_bytes_per_second() {
        assert_eq!(parse_bandwidth("100mbit").unwrap(), 12_500_000);
        assert_eq!(parse_bandwidth("100Mbit").unwrap(), 12_500_000);
        assert_eq!(parse_bandwidth("1.5gbit").unwrap(), 187_500_000);
        assert_eq!(parse_bandwidth("800kbit").unwrap(), 100_000);
        assert_eq!(parse_bandwidth("12MB").unwrap(), 12_000_000);
        assert_eq!(parse_bandwidth("2000B").unwrap(), 2_000);
        for bad in ["100", "fast", "mbit", "100mb", "0mbit", "1bit", "-5MB"] {
            let err = parse_bandwidth(bad).unwrap_err().to_string();
            assert!(err.contains("--bandwidth"), "{bad}: {err}");
        }
    }
}
