//! Which child gets which output, by the task's [`Route`]:
//! - `by-suffix` (app.yaml's default): an output whose stem ends in
//!   `_<child>` goes to that child only; every other output to every child;
//! - `all` (an original app's flag `true`): every output to every child;
//! - `by-order` (flag `false`, circe/original/monitor.py): the i-th output
//!   written goes to the i-th child in the order the children are listed,
//!   whatever the names; with k outputs per child, output j goes to child
//!   j mod n, as the original's batches of n do.

use jupiter_common::app::Route;

/// Why outputs cannot be routed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error(
        "wrote {outputs} output(s) for {children} children, but its outputs are paired with its \
         children in order (flag false in configuration.txt, or route: by-order): it must write one \
         per child, or a multiple of that ({list})"
    )]
    NotPaired {
        outputs: usize,
        children: usize,
        list: String,
    },
}

/// Checks that `outputs` can be routed to `children` under `route`.
pub fn check(outputs: &[String], children: &[String], route: Route) -> Result<(), RouteError> {
    if route == Route::ByOrder && !children.is_empty() && !outputs.len().is_multiple_of(children.len()) {
        return Err(RouteError::NotPaired {
            outputs: outputs.len(),
            children: children.len(),
            list: outputs.join(", "),
        });
    }
    Ok(())
}

/// For each child (same order as `children`), the outputs it receives.
pub fn route<'a>(outputs: &'a [String], children: &[String], route: Route) -> Vec<Vec<&'a str>> {
    let mut routed = vec![Vec::new(); children.len()];
    if children.is_empty() {
        return routed;
    }
    for (j, output) in outputs.iter().enumerate() {
        match route {
            Route::All => routed.iter_mut().for_each(|r| r.push(output.as_str())),
            Route::ByOrder => routed[j % children.len()].push(output.as_str()),
            Route::BySuffix => {
                let stem = output.rsplit_once('.').map_or(output.as_str(), |(s, _)| s);
                let only = children.iter().position(|c| {
                    stem.strip_suffix(c.as_str())
                        .is_some_and(|rest| rest.ends_with('_'))
                });
                match only {
                    Some(i) => routed[i].push(output.as_str()),
                    None => routed.iter_mut().for_each(|r| r.push(output.as_str())),
                }
            }
        }
    }
    routed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn suffix_picks_one_child_and_the_rest_go_everywhere() {
        let outputs = strings(&[
            "7botnet_task0_task1.txt",
            "7botnet_task0_task2.txt",
            "summary.txt",
            "x_task10.txt",
        ]);
        let children = strings(&["task1", "task2"]);
        let routed = route(&outputs, &children, Route::BySuffix);
        assert_eq!(
            routed[0],
            vec!["7botnet_task0_task1.txt", "summary.txt", "x_task10.txt"]
        );
        assert_eq!(
            routed[1],
            vec!["7botnet_task0_task2.txt", "summary.txt", "x_task10.txt"]
        );
    }

    #[test]
    fn all_ignores_suffixes() {
        let outputs = strings(&["a_task1.txt", "b.txt"]);
        let children = strings(&["task1", "task2"]);
        let routed = route(&outputs, &children, Route::All);
        assert_eq!(routed, vec![vec!["a_task1.txt", "b.txt"]; 2]);
    }

    #[test]
    fn by_order_pairs_the_ith_output_with_the_ith_child_whatever_the_names() {
        // Written in this order; the names point the other way on purpose.
        let outputs = strings(&["6split_2", "6split_0", "6split_1"]);
        let children = strings(&["aggregate0", "aggregate1", "aggregate2"]);
        check(&outputs, &children, Route::ByOrder).expect("one per child");
        let routed = route(&outputs, &children, Route::ByOrder);
        assert_eq!(routed, vec![vec!["6split_2"], vec!["6split_0"], vec!["6split_1"]]);
        // Two rounds: j mod n.
        let outputs = strings(&["a", "b", "c", "d"]);
        let routed = route(&outputs, &children[..2], Route::ByOrder);
        assert_eq!(routed, vec![vec!["a", "c"], vec!["b", "d"]]);
    }

    #[test]
    fn by_order_refuses_outputs_that_do_not_pair() {
        let outputs = strings(&["a", "b"]);
        let children = strings(&["x", "y", "z"]);
        let e = check(&outputs, &children, Route::ByOrder).expect_err("2 for 3");
        let message = e.to_string();
        assert!(message.contains("wrote 2 output(s) for 3 children"), "{message}");
        assert!(message.contains("a, b"), "{message}");
        assert!(check(&outputs, &children, Route::All).is_ok());
    }
}
