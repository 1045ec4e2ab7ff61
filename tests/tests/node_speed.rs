//! Node speed under real CPU limits: the droplet's benchmark inside Docker
//! containers of 0.25, 0.5, 1.0 and 1.5 CPUs, all started at once on one
//! host (as a deployment's nodes are), must read each node's share of a
//! core — a quarter-CPU node a quarter of the speed of a full one — and its
//! limit must be the container's quota. Skips loudly without Docker.

use jupiter_tests::docker::{engine_or_skip, ensure_images, test_tag};
use jupiterctl::docker::engine::Engine;

/// `drupe-droplet --measure-speed` in a container limited to `cpus`.
async fn measure_in(engine: &Engine, cpus: f64) -> serde_json::Value {
    let image = format!("jupiter/drupe-droplet:{}", test_tag());
    let out = engine
        .run(&[
            "run",
            "--rm",
            "--cpus",
            &cpus.to_string(),
            &image,
            "--measure-speed",
        ])
        .await
        .expect("the droplet image measures its speed");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not a speed reading ({e}): {out}"))
}

fn field(reading: &serde_json::Value, name: &str) -> f64 {
    reading[name]
        .as_f64()
        .unwrap_or_else(|| panic!("no {name} in {reading}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn speed_is_the_share_of_a_core_under_a_cpu_quota() {
    let Some(engine) = engine_or_skip("speed_is_the_share_of_a_core_under_a_cpu_quota").await else {
        return;
    };
    ensure_images().await;
    // This host's core, as the benchmark reads it outside any quota (the
    // droplet crate is optimised in test builds too, so this is
    // comparable), read in each round below.
    let mut core = 0.0f64;
    // The best of three rounds, for the host as for each size: a reading
    // can only be slowed by other work (this VM's neighbours, the image
    // build that just ended), and single readings here ranged ±40% on a
    // quiet machine.
    let sizes = [0.25, 0.5, 1.0, 1.5];
    let mut readings: Vec<(f64, serde_json::Value)> =
        sizes.iter().map(|&c| (c, serde_json::Value::Null)).collect();
    for _ in 0..3 {
        core = core.max(drupe_droplet::speed::measure().core);
        let round = tokio::join!(
            measure_in(&engine, sizes[0]),
            measure_in(&engine, sizes[1]),
            measure_in(&engine, sizes[2]),
            measure_in(&engine, sizes[3]),
        );
        for (best, reading) in readings.iter_mut().zip([round.0, round.1, round.2, round.3]) {
            if best.1.is_null() || field(&reading, "per_thread") > field(&best.1, "per_thread") {
                best.1 = reading;
            }
        }
    }
    for (cpus, reading) in &readings {
        eprintln!("--cpus {cpus}: {reading}");
    }
    for (cpus, reading) in &readings {
        let limit = field(reading, "cpu_limit");
        assert!(
            (limit - cpus).abs() < 1e-3,
            "--cpus {cpus} read a limit of {limit}"
        );
        assert_eq!(field(reading, "cpu_count"), cpus.ceil(), "--cpus {cpus}");
        let per_thread = field(reading, "per_thread");
        let want = core * cpus.min(1.0);
        assert!(
            (per_thread / want - 1.0).abs() < 0.15,
            "--cpus {cpus}: per_thread {per_thread}, want {want} ±15% (host core {core})"
        );
        let capacity = field(reading, "capacity");
        assert!(
            (capacity / (core * cpus) - 1.0).abs() < 0.15,
            "--cpus {cpus}: capacity {capacity}, want {} ±15%",
            core * cpus
        );
    }
    let ratio = field(&readings[0].1, "per_thread") / field(&readings[2].1, "per_thread");
    assert!(
        (ratio / 0.25 - 1.0).abs() < 0.15,
        "a 0.25-CPU node reads {ratio} of a 1-CPU one, want 0.25 ±15%"
    );
}
