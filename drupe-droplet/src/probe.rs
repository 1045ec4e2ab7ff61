//! Measuring one link from this droplet to a peer: echoes for the
//! round-trip time, then payloads streamed to the peer's `Sink`, each timed
//! from the first byte to the peer's acknowledgement (the fastest of
//! `repeats` counts).
//!
//! Adaptive sizes: a fixed payload that is tiny against the link (128 KiB
//! on a multi-Gbit bridge moves in ~100 µs, below the round trip and the
//! timer's jitter) measures noise, not bandwidth. So after the requested
//! sizes the largest payload keeps doubling until its fastest transfer
//! lasts at least `max(min_transfer_secs, 10 × RTT)` or it reaches
//! `max_bytes`. Doubling bounds the extra time: all the smaller payloads
//! together take about as long as the last one. Central passes the size
//! that sufficed last round, so usually no doubling is needed at all.

use bytes::Bytes;
use jupiter_common::proto::drupe::droplet::v1::drupe_droplet_client::DrupeDropletClient;
use jupiter_common::proto::drupe::droplet::v1::{
    EchoRequest, LinkMeasurement, Payload, ProbeRequest, SizeSample,
};
use jupiter_common::serve;
use std::time::{Duration, Instant};

/// Bytes per message of a payload stream.
const PAYLOAD_CHUNK: usize = 64 * 1024;
/// Bytes of each echo.
pub const ECHO_BYTES: usize = 32;
/// The largest payload adaptive probing sends when `max_bytes` is 0.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// No payload may be larger: a probe must not hog a link or the memory.
pub const SIZE_LIMIT: u64 = 1 << 30;
/// A transfer is timed well once it lasts this many round trips: the
/// per-call overhead (about one round trip) is then a small part of it.
pub const RTT_FACTOR: f64 = 10.0;

/// A probe request that cannot be run; the message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("peer_address is empty")]
    NoPeerAddress,
    #[error("sizes[{index}] is {size}: probe sizes must be between 1 byte and 1 GiB")]
    Size { index: usize, size: u64 },
    #[error("max_bytes is {0}: it must be at most 1 GiB (0 means 64 MiB)")]
    MaxBytes(u64),
    #[error("min_transfer_secs is {0}: it must be between 0 and 60 seconds")]
    MinTransferSecs(f64),
}

/// Checks a request before any byte is sent.
pub fn validate(request: &ProbeRequest) -> Result<(), RequestError> {
    if request.peer_address.is_empty() {
        return Err(RequestError::NoPeerAddress);
    }
    if let Some((index, &size)) = request
        .sizes
        .iter()
        .enumerate()
        .find(|(_, &s)| s == 0 || s > SIZE_LIMIT)
    {
        return Err(RequestError::Size { index, size });
    }
    if request.max_bytes > SIZE_LIMIT {
        return Err(RequestError::MaxBytes(request.max_bytes));
    }
    // More than a minute per transfer would outlast any sane probe timeout.
    if !(0.0..=60.0).contains(&request.min_transfer_secs) {
        return Err(RequestError::MinTransferSecs(request.min_transfer_secs));
    }
    Ok(())
}

/// How long a transfer must last to be timed well: `min_secs`, and at
/// least [`RTT_FACTOR`] round trips.
pub fn target_secs(min_secs: f64, rtt_secs: f64) -> f64 {
    min_secs.max(RTT_FACTOR * rtt_secs)
}

/// The adaptive step: after the largest payload so far (`bytes`) took
/// `seconds` at its fastest, the next size to send, or `None` when the
/// transfer was long enough, reached `max_bytes`, or adaptive probing is
/// off (`min_secs` 0).
pub fn next_size(bytes: u64, seconds: f64, rtt_secs: f64, min_secs: f64, max_bytes: u64) -> Option<u64> {
    if min_secs <= 0.0 || bytes == 0 || bytes >= max_bytes || seconds >= target_secs(min_secs, rtt_secs) {
        return None;
    }
    Some(bytes.saturating_mul(2).min(max_bytes))
}

/// Probes `request.peer` (a request [`validate`] accepted); failures come
/// back inside the measurement.
pub async fn probe(from: &str, request: &ProbeRequest) -> LinkMeasurement {
    let timeout = Duration::from_secs_f64(request.timeout_secs.clamp(0.1, 3600.0));
    let mut measurement = LinkMeasurement {
        from: from.to_string(),
        to: request.peer.clone(),
        measured_at_unix_millis: jupiter_common::clock::unix_nanos() / 1_000_000,
        ..Default::default()
    };
    match tokio::time::timeout(timeout, measure(request)).await {
        Ok(Ok((rtt_ms, samples))) => {
            measurement.rtt_ms = rtt_ms;
            measurement.samples = samples;
        }
        Ok(Err(e)) => measurement.error = e,
        Err(_) => measurement.error = format!("no answer within {timeout:?}"),
    }
    measurement
}

async fn measure(request: &ProbeRequest) -> Result<(f64, Vec<SizeSample>), String> {
    let channel = serve::channel(&request.peer_address).map_err(|e| format!("bad address: {e}"))?;
    let mut client = DrupeDropletClient::new(channel);
    // The first echo also opens the connection; it is not a sample.
    let echo = || EchoRequest {
        payload: vec![0u8; ECHO_BYTES],
    };
    client
        .echo(echo())
        .await
        .map_err(|s| format!("echo: {}", s.message()))?;
    let mut rtts = Vec::new();
    for _ in 0..request.echoes.max(1) {
        let started = Instant::now();
        client
            .echo(echo())
            .await
            .map_err(|s| format!("echo: {}", s.message()))?;
        rtts.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    rtts.sort_by(f64::total_cmp);
    let rtt_ms = rtts[rtts.len() / 2];
    let mut samples = Vec::with_capacity(request.sizes.len() + 8);
    let block = Bytes::from(vec![0x5au8; PAYLOAD_CHUNK]);
    for &size in &request.sizes {
        samples.push(send(&mut client, &block, size, request.repeats).await?);
    }
    let max_bytes = match request.max_bytes {
        0 => DEFAULT_MAX_BYTES,
        m => m,
    };
    let mut largest = samples.iter().max_by_key(|s| s.bytes).cloned();
    while let Some(next) = largest.as_ref().and_then(|s| {
        next_size(
            s.bytes,
            s.seconds,
            rtt_ms / 1000.0,
            request.min_transfer_secs,
            max_bytes,
        )
    }) {
        let sample = send(&mut client, &block, next, request.repeats).await?;
        largest = Some(sample);
        samples.push(sample);
    }
    Ok((rtt_ms, samples))
}

/// Streams `size` bytes to the peer `repeats` times; the fastest counts.
async fn send(
    client: &mut DrupeDropletClient<jupiter_common::serve::Channel>,
    block: &Bytes,
    size: u64,
    repeats: u32,
) -> Result<SizeSample, String> {
    let chunks: Vec<Payload> = (0..size.div_ceil(PAYLOAD_CHUNK as u64))
        .map(|i| {
            let len = (size - i * PAYLOAD_CHUNK as u64).min(PAYLOAD_CHUNK as u64) as usize;
            Payload {
                data: block.slice(..len),
            }
        })
        .collect();
    let mut fastest = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        let ack = client
            .sink(tokio_stream::iter(chunks.clone()))
            .await
            .map_err(|s| format!("payload of {size} bytes: {}", s.message()))?
            .into_inner();
        fastest = fastest.min(started.elapsed().as_secs_f64());
        if ack.bytes != size {
            return Err(format!("peer acknowledged {} of {size} bytes", ack.bytes));
        }
    }
    Ok(SizeSample {
        bytes: size,
        seconds: fastest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn doubles_until_the_transfer_is_long_enough() {
        // A 10 Gbit/s link with a 0.1 ms round trip: 128 KiB takes ~0.1 ms.
        let seconds = |bytes: u64| 1e-4 + bytes as f64 / 1.25e9;
        let mut size = 128 * 1024;
        let mut sent = vec![size];
        while let Some(next) = next_size(size, seconds(size), 1e-4, 0.02, 64 * MIB) {
            assert_eq!(next, size * 2, "one doubling at a time");
            size = next;
            sent.push(size);
        }
        assert!(seconds(size) >= 0.02, "stopped at {size} bytes");
        assert!(seconds(size / 2) < 0.02, "went one doubling too far");
        assert_eq!(size, 32 * MIB);
    }

    #[test]
    fn stops_at_the_round_trip_bound_or_the_cap() {
        // Long enough for min_secs but not for 10 round trips of 5 ms.
        assert_eq!(next_size(MIB, 0.03, 0.005, 0.02, 64 * MIB), Some(2 * MIB));
        assert_eq!(next_size(MIB, 0.05, 0.005, 0.02, 64 * MIB), None);
        // The cap is never exceeded, and reaching it ends the search.
        assert_eq!(next_size(48 * MIB, 0.001, 1e-4, 0.02, 64 * MIB), Some(64 * MIB));
        assert_eq!(next_size(64 * MIB, 0.001, 1e-4, 0.02, 64 * MIB), None);
        // Off.
        assert_eq!(next_size(MIB, 0.0001, 1e-4, 0.0, 64 * MIB), None);
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let ok = ProbeRequest {
            peer: "b".into(),
            peer_address: "http://b:7101".into(),
            sizes: vec![16 * 1024, 128 * 1024],
            min_transfer_secs: 0.02,
            ..Default::default()
        };
        assert_eq!(validate(&ok), Ok(()));
        let bad = |f: &dyn Fn(&mut ProbeRequest)| {
            let mut r = ok.clone();
            f(&mut r);
            validate(&r).unwrap_err().to_string()
        };
        assert!(bad(&|r| r.peer_address.clear()).starts_with("peer_address"));
        assert!(bad(&|r| r.sizes[1] = 0).starts_with("sizes[1] is 0"));
        assert!(bad(&|r| r.sizes[0] = 2 << 30).starts_with("sizes[0]"));
        assert!(bad(&|r| r.max_bytes = 2 << 30).starts_with("max_bytes"));
        assert!(bad(&|r| r.min_transfer_secs = -1.0).starts_with("min_transfer_secs"));
        assert!(bad(&|r| r.min_transfer_secs = f64::NAN).starts_with("min_transfer_secs"));
    }
}
