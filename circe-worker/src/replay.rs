//! Passes of an input. circe-home replays an unfinished input after a node
//! was lost, as its next pass (`FileHeader.attempt`); after the profile
//! drifted and the tasks were mapped again, new inputs follow the new
//! placement (`FileHeader.placement`). A worker keeps each pass apart in
//! its queue, so a pass runs again where an earlier one already ran (or is
//! stuck waiting for a parent that was lost), and the key says where the
//! pass's outputs go. The queue key of a pass: the input id for the first
//! pass of the first placement; `.r<N>.<id>` for pass N of placement 0;
//! `.r<N>p<P>.<id>` for placement P. No input id can be one of these (ids
//! never start with a dot).

/// Which pass of an input a file or a queue entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pass {
    /// 0 the first; raised by each replay.
    pub attempt: u32,
    /// The mapping the pass follows: 0 the first.
    pub placement: u32,
}

/// The queue key of `input`'s `pass`.
pub fn key(input: &str, pass: Pass) -> String {
    match pass {
        Pass {
            attempt: 0,
            placement: 0,
        } => input.to_string(),
        Pass {
            attempt,
            placement: 0,
        } => format!(".r{attempt}.{input}"),
        Pass { attempt, placement } => format!(".r{attempt}p{placement}.{input}"),
    }
}

/// The input id and the pass a queue key stands for.
pub fn split(key: &str) -> (&str, Pass) {
    let parsed = key
        .strip_prefix(".r")
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(head, id)| {
            let pass = match head.split_once('p') {
                Some((attempt, placement)) => Pass {
                    attempt: attempt.parse().ok()?,
                    placement: placement.parse().ok()?,
                },
                None => Pass {
                    attempt: head.parse().ok()?,
                    placement: 0,
                },
            };
            Some((id, pass))
        });
    parsed.unwrap_or((key, Pass::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(attempt: u32, placement: u32) -> Pass {
        Pass { attempt, placement }
    }

    #[test]
    fn keys_read_back() {
        assert_eq!(key("in1.txt", pass(0, 0)), "in1.txt");
        assert_eq!(key("in1.txt", pass(2, 0)), ".r2.in1.txt");
        assert_eq!(key("in1.txt", pass(0, 3)), ".r0p3.in1.txt");
        for p in [pass(0, 0), pass(2, 0), pass(0, 3), pass(4, 1)] {
            assert_eq!(split(&key("in1.txt", p)), ("in1.txt", p));
        }
        assert_eq!(split(".r2.in1.txt"), ("in1.txt", pass(2, 0)));
        assert_eq!(split("in1.txt"), ("in1.txt", pass(0, 0)));
        assert_eq!(
            split(".rx.y"),
            (".rx.y", pass(0, 0)),
            "not a pass key: kept whole"
        );
        assert_eq!(
            split(".r1px.y"),
            (".r1px.y", pass(0, 0)),
            "not a pass key: kept whole"
        );
    }
}
