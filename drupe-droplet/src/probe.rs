//! Measuring one link from this droplet to a peer: echoes for the
//! round-trip time, then one payload of each size streamed to the peer's
//! `Sink`, timed from the first byte to the peer's acknowledgement.

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

/// Probes `request.peer`; failures come back inside the measurement.
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
    let mut samples = Vec::with_capacity(request.sizes.len());
    let block = Bytes::from(vec![0x5au8; PAYLOAD_CHUNK]);
    for &size in &request.sizes {
        let chunks: Vec<Payload> = (0..size.div_ceil(PAYLOAD_CHUNK as u64))
            .map(|i| {
                let len = (size - i * PAYLOAD_CHUNK as u64).min(PAYLOAD_CHUNK as u64) as usize;
                Payload {
                    data: block.slice(..len),
                }
            })
            .collect();
        let mut fastest = f64::INFINITY;
        for _ in 0..request.repeats.max(1) {
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
        samples.push(SizeSample {
            bytes: size,
            seconds: fastest,
        });
    }
    Ok((rtt_ms, samples))
}
