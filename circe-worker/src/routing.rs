//! Which child gets which output. An output whose stem ends in `_<child>`
//! goes to that child only (the original Jupiter apps name per-child outputs
//! this way); every other output goes to every child.

/// For each child (same order as `children`), the outputs it receives.
pub fn route<'a>(outputs: &'a [String], children: &[String]) -> Vec<Vec<&'a str>> {
    let mut routed = vec![Vec::new(); children.len()];
    for output in outputs {
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
    routed
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn suffix_picks_one_child_and_the_rest_go_everywhere() {
        let outputs = vec![
            "7botnet_task0_task1.txt".to_string(),
            "7botnet_task0_task2.txt".to_string(),
            "summary.txt".to_string(),
            "x_task10.txt".to_string(),
        ];
        let children = vec!["task1".to_string(), "task2".to_string()];
        let routed = route(&outputs, &children);
        assert_eq!(
            routed[0],
            vec!["7botnet_task0_task1.txt", "summary.txt", "x_task10.txt"]
        );
        assert_eq!(
            routed[1],
            vec!["7botnet_task0_task2.txt", "summary.txt", "x_task10.txt"]
        );
    }
}
