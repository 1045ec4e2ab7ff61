//! Command-line flags of drupe-central, shared by its binary and `jupiterctl serve`.

use crate::CentralConfig;
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "JUPITER_LISTEN", default_value = "0.0.0.0:7100")]
    pub listen: String,
    /// The embedded profile database (created if missing; keep it across restarts).
    #[arg(
        long,
        env = "JUPITER_DRUPE_DB",
        default_value = "/var/lib/jupiter/drupe/central.redb"
    )]
    pub db: PathBuf,
    /// Seconds between probe rounds.
    #[arg(long, env = "JUPITER_PROBE_INTERVAL", default_value_t = 60.0)]
    pub probe_interval: f64,
    /// Payload sizes sent over every link each round: bytes, or with a KiB/MiB suffix.
    #[arg(
        long,
        env = "JUPITER_PROBE_SIZES",
        value_delimiter = ',',
        default_value = "64KiB,256KiB,1MiB"
    )]
    pub probe_sizes: Vec<String>,
    /// Transfers of each size per link and round (the fastest counts).
    #[arg(long, env = "JUPITER_PROBE_REPEATS", default_value_t = 2)]
    pub probe_repeats: u32,
    /// Echoes per link for the round-trip time (the median is kept).
    #[arg(long, env = "JUPITER_PROBE_ECHOES", default_value_t = 5)]
    pub echoes: u32,
    /// Seconds after which one link probe fails.
    #[arg(long, env = "JUPITER_PROBE_TIMEOUT", default_value_t = 30.0)]
    pub probe_timeout: f64,
    /// Seconds without a resource report after which a node is unreachable.
    #[arg(long, env = "JUPITER_UNREACHABLE_AFTER", default_value_t = 15.0)]
    pub unreachable_after: f64,
}

/// `65536`, `64KiB`, `64k`, `1MiB`, `1m` -> bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("probe size {t:?} is not a number of bytes"))?;
    let factor = match unit {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1024,
        "m" | "mib" | "mb" => 1024 * 1024,
        _ => {
            return Err(format!(
                "probe size {t:?}: unknown unit {unit:?} (use bytes, KiB or MiB)"
            ))
        }
    };
    match n.checked_mul(factor) {
        Some(bytes) if bytes > 0 && bytes <= 1 << 30 => Ok(bytes),
        _ => Err(format!("probe size {t:?} must be between 1 byte and 1 GiB")),
    }
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        value > 0.0 && value.is_finite(),
        "--{flag} must be a positive number of seconds, got {value}"
    );
    Ok(Duration::from_secs_f64(value))
}

impl Args {
    pub fn config(&self) -> anyhow::Result<CentralConfig> {
        let probe_sizes = self
            .probe_sizes
            .iter()
            .map(|s| parse_size(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        anyhow::ensure!(!probe_sizes.is_empty(), "--probe-sizes needs at least one size");
        Ok(CentralConfig {
            db: self.db.clone(),
            probe_interval: seconds("probe-interval", self.probe_interval)?,
            probe_sizes,
            probe_repeats: self.probe_repeats.max(1),
            echoes: self.echoes.max(1),
            probe_timeout: seconds("probe-timeout", self.probe_timeout)?,
            unreachable_after: seconds("unreachable-after", self.unreachable_after)?,
        })
    }
}

/// Runs drupe-central until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config()?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, db = %config.db.display(), "drupe-central listening");
    crate::serve(config, listener, jupiter_common::telemetry::shutdown_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").is_err());
    }
}
