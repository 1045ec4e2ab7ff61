//! HEFT and CPoP: small instances whose optimum is known by hand, and
//! properties every schedule must have on many random instances.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wave_home::offline::heuristics::evaluate;
use wave_home::offline::{schedule, Algorithm, Problem};

const BOTH: [Algorithm; 2] = [Algorithm::Heft, Algorithm::Cpop];

fn problem(json: &str) -> Problem {
    Problem::parse("test.json", json).expect("valid problem")
}

fn makespan(json: &str, algorithm: Algorithm) -> f64 {
    let p = problem(json);
    let s = schedule(&p, algorithm);
    s.validate(&p).expect("valid schedule");
    s.makespan
}

#[test]
fn a_chain_on_one_node_takes_the_sum_of_its_costs() {
    let json = r#"{"nodes": [{"name": "n0", "speed": 2.0}],
        "tasks": [{"name": "a", "cost": 2}, {"name": "b", "cost": 4}, {"name": "c", "cost": 6}],
        "edges": [{"from": "a", "to": "b", "data": 5}, {"from": "b", "to": "c", "data": 5}]}"#;
    for a in BOTH {
        assert_eq!(makespan(json, a), 6.0, "{a:?}");
    }
}

#[test]
fn expensive_communication_keeps_a_diamond_on_one_node() {
    // Optimum 4: everything on one node; any split pays 100 for a transfer.
    let json = r#"{"nodes": [{"name": "n0", "speed": 1}, {"name": "n1", "speed": 1}],
        "links": [{"from": "n0", "to": "n1", "bandwidth": 1}],
        "tasks": [{"name": "t0", "cost": 1}, {"name": "t1", "cost": 1}, {"name": "t2", "cost": 1}, {"name": "t3", "cost": 1}],
        "edges": [{"from": "t0", "to": "t1", "data": 100}, {"from": "t0", "to": "t2", "data": 100},
                  {"from": "t1", "to": "t3", "data": 100}, {"from": "t2", "to": "t3", "data": 100}]}"#;
    for a in BOTH {
        assert_eq!(makespan(json, a), 4.0, "{a:?}");
    }
    // The same diamond split over both nodes pays two transfers of 100.
    let p = problem(json);
    assert_eq!(evaluate(&p, &[0, 0, 1, 0]).makespan, 203.0);
}

#[test]
fn free_communication_runs_a_fork_in_parallel() {
    // Optimum 11: t1 and t2 side by side after t0.
    let json = r#"{"nodes": [{"name": "n0", "speed": 1}, {"name": "n1", "speed": 1}],
        "links": [{"from": "n1", "to": "n0", "bandwidth": 1}],
        "tasks": [{"name": "t0", "cost": 1}, {"name": "t1", "cost": 10}, {"name": "t2", "cost": 10}],
        "edges": [{"from": "t0", "to": "t1", "data": 0}, {"from": "t0", "to": "t2", "data": 0}]}"#;
    assert_eq!(makespan(json, Algorithm::Heft), 11.0);
}

#[test]
fn the_fast_node_takes_the_work() {
    // Optimum 2.5: the 4x node runs all three tasks (10 / 4), a transfer costs 50.
    let json = r#"{"nodes": [{"name": "slow", "speed": 1}, {"name": "fast", "speed": 4}],
        "links": [{"from": "slow", "to": "fast", "bandwidth": 0.1}],
        "tasks": [{"name": "a", "cost": 2}, {"name": "b", "cost": 4}, {"name": "c", "cost": 4}],
        "edges": [{"from": "a", "to": "b", "data": 5}, {"from": "a", "to": "c", "data": 5}]}"#;
    for a in BOTH {
        let p = problem(json);
        let s = schedule(&p, a);
        assert_eq!(s.makespan, 2.5, "{a:?}");
        assert!(s.schedule.iter().all(|x| x.node == "fast"), "{a:?}: {s:?}");
    }
}

#[test]
fn one_node_runs_everything_back_to_back() {
    // Optimum 8 = all the work (1 + 4 + 1 + 2): on one node transfers are
    // free and the runs must neither overlap nor leave a gap.
    let json = r#"{"nodes": [{"name": "n0", "speed": 1}],
        "tasks": [{"name": "r", "cost": 1}, {"name": "x", "cost": 4}, {"name": "y", "cost": 1}, {"name": "z", "cost": 2}],
        "edges": [{"from": "r", "to": "x", "data": 1}, {"from": "r", "to": "y", "data": 1}, {"from": "x", "to": "z", "data": 1}]}"#;
    for a in BOTH {
        assert_eq!(makespan(json, a), 8.0, "{a:?}");
    }
}

/// A random layered DAG over a random fully connected network.
fn random_problem(rng: &mut StdRng) -> String {
    let nodes = rng.gen_range(1..8);
    let tasks = rng.gen_range(1..60);
    let mut json = String::from("{\"nodes\": [");
    for n in 0..nodes {
        json += &format!(
            "{}{{\"name\": \"n{n}\", \"speed\": {}}}",
            if n > 0 { "," } else { "" },
            rng.gen_range(0.1..5.0)
        );
    }
    json += "], \"links\": [";
    let mut first = true;
    for a in 0..nodes {
        for b in (a + 1)..nodes {
            json += &format!(
                "{}{{\"from\": \"n{a}\", \"to\": \"n{b}\", \"bandwidth\": {}}}",
                if first { "" } else { "," },
                rng.gen_range(0.1..10.0)
            );
            first = false;
        }
    }
    json += "], \"tasks\": [";
    for t in 0..tasks {
        // Some zero costs and zero data: the edge cases of list schedulers.
        let cost = if rng.gen_bool(0.1) {
            0.0
        } else {
            rng.gen_range(0.1..20.0)
        };
        json += &format!(
            "{}{{\"name\": \"t{t}\", \"cost\": {cost}}}",
            if t > 0 { "," } else { "" }
        );
    }
    json += "], \"edges\": [";
    let mut first = true;
    for b in 1..tasks {
        for a in 0..b {
            if rng.gen_bool(0.15) {
                let data = if rng.gen_bool(0.1) {
                    0.0
                } else {
                    rng.gen_range(0.0..30.0)
                };
                json += &format!(
                    "{}{{\"from\": \"t{a}\", \"to\": \"t{b}\", \"data\": {data}}}",
                    if first { "" } else { "," }
                );
                first = false;
            }
        }
    }
    json + "]}"
}

#[test]
fn every_schedule_respects_the_model() {
    let mut rng = StdRng::seed_from_u64(42);
    for case in 0..300 {
        let json = random_problem(&mut rng);
        let p = problem(&json);
        // A lower bound: the critical path's work on the fastest node.
        let fastest = p.speeds.iter().cloned().fold(0.0, f64::max);
        let mut longest = vec![0.0; p.tasks()];
        for &t in &p.topo {
            let before = p.pred[t].iter().map(|&(q, _)| longest[q]).fold(0.0, f64::max);
            longest[t] = before + p.costs[t] / fastest;
        }
        let bound = longest.iter().cloned().fold(0.0, f64::max);
        for a in BOTH {
            let s = schedule(&p, a);
            // Precedence with transfer times, no overlap on a node, exact
            // run times, makespan = latest end.
            s.validate(&p)
                .unwrap_or_else(|e| panic!("case {case} {a:?}: {e}\n{json}"));
            assert!(
                s.makespan + 1e-9 >= bound,
                "case {case} {a:?}: {} below bound {bound}",
                s.makespan
            );
        }
    }
}

#[test]
fn bad_problems_name_the_field() {
    let cases = [
        ("{", "line 1"),
        (r#"{"nodes": [], "tasks": [{"name": "t", "cost": 1}]}"#, "nodes"),
        (
            r#"{"nodes": [{"name": "a", "speed": 0}], "tasks": [{"name": "t", "cost": 1}]}"#,
            "nodes[0].speed",
        ),
        (
            r#"{"nodes": [{"name": "a", "speed": 1}, {"name": "b", "speed": 1}], "tasks": [{"name": "t", "cost": 1}]}"#,
            "no link between",
        ),
        (
            r#"{"nodes": [{"name": "a", "speed": 1}], "tasks": [{"name": "t", "cost": 1}], "edges": [{"from": "t", "to": "u", "data": 1}]}"#,
            "edges[0].to",
        ),
        (
            r#"{"nodes": [{"name": "a", "speed": 1}], "tasks": [{"name": "t", "cost": 1}, {"name": "u", "cost": 1}],
            "edges": [{"from": "t", "to": "u", "data": 1}, {"from": "u", "to": "t", "data": 1}]}"#,
            "cycle",
        ),
        (
            r#"{"nodes": [{"name": "a", "speed": 1, "ram": 4}], "tasks": []}"#,
            "unknown field",
        ),
        (
            r#"{"nodes": [{"name": "a", "speed": 1}], "tasks": [{"name": "t", "cost": -1}]}"#,
            "tasks[0].cost",
        ),
    ];
    for (json, fragment) in cases {
        let err = Problem::parse("p.json", json).expect_err(json).to_string();
        assert!(
            err.starts_with("p.json: ") && err.contains(fragment),
            "{err:?} should name {fragment:?}"
        );
    }
}

/// Found by the `problem_json` fuzz target: next to a task of cost 1.1e28,
/// a task of cost 1 starts and ends at the same float. The schedule is as
/// exact as f64 allows, and validation judges durations at the scale of
/// their times.
#[test]
fn huge_costs_beside_small_ones_still_validate() {
    let json = r#"{"nodes": [{"name": "n0", "speed": 1}, {"name": "n1", "speed": 1}],
        "links": [{"from": "n0", "to": "n1", "bandwidth": 1}],
        "tasks": [{"name": "t0", "cost": 1}, {"name": "t1", "cost": 11111111111111111111111111111},
                  {"name": "t2", "cost": 0}, {"name": "t3", "cost": 1}],
        "edges": [{"from": "t0", "to": "t1", "data": 100}, {"from": "t0", "to": "t2", "data": 100},
                  {"from": "t1", "to": "t3", "data": 100}, {"from": "t2", "to": "t3", "data": 200}]}"#;
    let p = problem(json);
    for a in BOTH {
        schedule(&p, a).validate(&p).expect("valid at f64's precision");
    }
}
