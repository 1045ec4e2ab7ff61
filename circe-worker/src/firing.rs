//! When an original Jupiter task fires, and with which files
//! (circe/original/monitor.py, `Handler.process_IN_CLOSE_WRITE`): arriving
//! files are grouped by their name's prefix before the first `_` (before the
//! first `.` if there is no `_`); a group of `inputs_to_wait_for` files makes
//! one call of `task(filename, pathin, pathout)`, `filename` being the one
//! name, or the list of names in arrival order.
//!
//! Jupiter runs a task once every parent has sent its files for an input, so
//! all the files of an input are here at once: they are cut into the same
//! groups, each group one call, in the order its first file arrived. Where
//! the original would wait for ever (a group short of files) or drop files
//! silently (a group with more), the input fails and says so.

/// The original's group key of a file name.
pub fn key(name: &str) -> &str {
    match name.split_once('_') {
        Some((prefix, _)) => prefix,
        None => name.split_once('.').map_or(name, |(prefix, _)| prefix),
    }
}

/// Why the files of an input do not make whole groups.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "waits for {wait} file(s) per name prefix (inputs_to_wait_for in configuration.txt; the prefix \
     is the name before the first '_', else before the first '.'), but this input brought {found}"
)]
pub struct FiringError {
    pub wait: usize,
    pub found: String,
}

/// The calls to make: `names` (in arrival order) cut into groups of `wait`
/// files with one key, in the order each group's first file arrived.
pub fn groups(names: &[String], wait: usize) -> Result<Vec<Vec<String>>, FiringError> {
    let mut grouped: Vec<(&str, Vec<String>)> = Vec::new();
    for name in names {
        let k = key(name);
        match grouped.iter_mut().find(|(g, _)| *g == k) {
            Some((_, files)) => files.push(name.clone()),
            None => grouped.push((k, vec![name.clone()])),
        }
    }
    if grouped.iter().all(|(_, files)| files.len() == wait) {
        return Ok(grouped.into_iter().map(|(_, files)| files).collect());
    }
    let found = grouped
        .iter()
        .map(|(k, files)| format!("{k:?}: {} ({})", files.len(), files.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    Err(FiringError { wait, found })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_key_is_the_prefix_before_the_first_underscore_else_the_first_dot() {
        assert_eq!(key("6split_0"), "6split");
        assert_eq!(key("1botnet_task0_task1.txt"), "1botnet");
        assert_eq!(key("in1.tar.gz"), "in1");
        assert_eq!(key("plain"), "plain");
        assert_eq!(key("_x"), "");
    }

    #[test]
    fn one_group_of_wait_files_is_one_call_in_arrival_order() {
        let names = strings(&["7b_task2.txt", "7b_task1.txt", "7b_task3.txt"]);
        assert_eq!(groups(&names, 3), Ok(vec![names.clone()]));
    }

    #[test]
    fn several_keys_are_several_calls() {
        // wait 1 and three prefixes: the original calls task() three times.
        let names = strings(&["a_x", "b_x", "c.txt"]);
        let calls = groups(&names, 1).expect("whole groups");
        assert_eq!(calls, vec![vec!["a_x"], vec!["b_x"], vec!["c.txt"]]);
        // Two keys of two, interleaved: grouped, in first-arrival order.
        let names = strings(&["b_1", "a_1", "a_2", "b_2"]);
        let calls = groups(&names, 2).expect("whole groups");
        assert_eq!(calls, vec![vec!["b_1", "b_2"], vec!["a_1", "a_2"]]);
    }

    #[test]
    fn a_short_or_long_group_is_named_with_its_files() {
        let names = strings(&["6split_0", "6split_1", "6split_2"]);
        let e = groups(&names, 1).expect_err("3 files, 1 expected");
        let message = e.to_string();
        assert!(message.contains("waits for 1 file(s)"), "{message}");
        assert!(
            message.contains("\"6split\": 3 (6split_0, 6split_1, 6split_2)"),
            "{message}"
        );
        assert!(groups(&names[..2], 3).is_err());
    }
}
