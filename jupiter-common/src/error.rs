//! How a binary prints an error for its user.

/// The error and its causes, each once: Jupiter's errors quote their cause
/// in their own message, which printing the chain would repeat.
pub fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let shown = inner.to_string();
        if !text.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[derive(Debug, thiserror::Error)]
    #[error("outer ({0})")]
    struct Quoting(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Silent(#[source] std::io::Error);

    #[test]
    fn causes_appear_once() {
        let io = || std::io::Error::other("disk full");
        assert_eq!(explain(&Quoting(io())), "outer (disk full)");
        assert_eq!(explain(&Silent(io())), "outer: disk full");
    }
}
