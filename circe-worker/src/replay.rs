//! Passes of an input. circe-home replays an unfinished input after a node
//! was lost, as its next pass (`FileHeader.attempt`); a worker keeps each
//! pass apart in its queue, so a pass runs again where an earlier one
//! already ran (or is stuck waiting for a parent that was lost). The queue
//! key of a pass: the input id for the first; `.r<N>.<id>` for pass N,
//! which no input id can be (ids never start with a dot).

/// The queue key of `input`'s pass `attempt`.
pub fn key(input: &str, attempt: u32) -> String {
    if attempt == 0 {
        input.to_string()
    } else {
        format!(".r{attempt}.{input}")
    }
}

/// The input id and the pass a queue key stands for.
pub fn split(key: &str) -> (&str, u32) {
    key.strip_prefix(".r")
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(n, id)| Some((id, n.parse().ok()?)))
        .unwrap_or((key, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back() {
        assert_eq!(key("in1.txt", 0), "in1.txt");
        assert_eq!(key("in1.txt", 2), ".r2.in1.txt");
        assert_eq!(split(".r2.in1.txt"), ("in1.txt", 2));
        assert_eq!(split("in1.txt"), ("in1.txt", 0));
        assert_eq!(split(".rx.y"), (".rx.y", 0), "not a pass key: kept whole");
    }
}
