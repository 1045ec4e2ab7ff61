//! The exact outputs that reach home for one input of each example app in
//! `examples/`, computed by a pure Rust model of the apps' specification
//! (independent of the task scripts), to check runs byte for byte.

/// The records of `content` as awk sees them: split on '\n', a final
/// unterminated line still a record, no record after a final '\n'.
fn lines(content: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = content.split(|&b| b == b'\n').collect();
    if content.is_empty() || content.ends_with(b"\n") {
        v.pop();
    }
    v
}

/// Lines, each terminated by '\n'.
fn unlines(lines: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for mut l in lines {
        out.append(&mut l);
        out.push(b'\n');
    }
    out
}

/// The input id without its last extension (`in1.txt` -> `in1`), as sh's `${id%.*}`.
fn stem(input_name: &str) -> &str {
    input_name.rfind('.').map_or(input_name, |i| &input_name[..i])
}

/// `examples/chain`: upper (ASCII upper case) -> number (`N: ` prefixes) ->
/// count (a final `lines: N`); one output named like the input.
pub fn chain(input_name: &str, content: &[u8]) -> Vec<(String, Vec<u8>)> {
    let upper = content.to_ascii_uppercase();
    let numbered = unlines(lines(&upper).iter().enumerate().map(|(i, l)| {
        let mut v = format!("{}: ", i + 1).into_bytes();
        v.extend_from_slice(l);
        v
    }));
    let n = lines(&numbered).len();
    let mut counted = unlines(lines(&numbered).into_iter().map(<[u8]>::to_vec));
    counted.extend_from_slice(format!("lines: {n}\n").as_bytes());
    vec![(input_name.to_string(), counted)]
}

/// `examples/fanjoin`: split (odd lines to left, even lines to right), left
/// and right prefix `L:` / `R:`, join concatenates left's then right's into
/// `{stem}.joined`.
pub fn fanjoin(input_name: &str, content: &[u8]) -> Vec<(String, Vec<u8>)> {
    let tagged = |tag: &str, odd: bool| {
        unlines(
            lines(content)
                .into_iter()
                .enumerate()
                .filter(|(i, _)| (i % 2 == 0) == odd)
                .map(|(_, l)| {
                    let mut v = format!("{tag}:").into_bytes();
                    v.extend_from_slice(l);
                    v
                }),
        )
    };
    let mut joined = tagged("L", true);
    joined.extend(tagged("R", false));
    vec![(format!("{}.joined", stem(input_name)), joined)]
}

/// `examples/dummy_app` (original Jupiter format): only task6's
/// `{base}_task6.txt` reaches home.
pub fn dummy_app(input_name: &str, content: &[u8]) -> Vec<(String, Vec<u8>)> {
    let base = input_name
        .split('_')
        .next()
        .unwrap_or("")
        .split('.')
        .next()
        .unwrap_or("");
    let cat = |parts: &[&[u8]]| parts.concat();
    let from0 = |child: &str| cat(&[format!("task0 -> {child}\n").as_bytes(), content]);
    // A task's output: its name on a line, then its inputs in file-name order
    // (the order written here is the file-name order of {base}_task0_task4.txt,
    // {base}_task1.txt, {base}_task2.txt, ...).
    let t1 = cat(&[b"task1\n", &from0("task1")]);
    let t2 = cat(&[b"task2\n", &from0("task2")]);
    let t3 = cat(&[b"task3\n", &from0("task3")]);
    let t4 = cat(&[b"task4\n", &from0("task4"), &t1, &t2, &t3]);
    let t5 = cat(&[b"task5\n", &t2, &t3]);
    let t6 = cat(&[b"task6\n", &t2, &t3, &t4, &t5]);
    vec![(format!("{base}_task6.txt"), t6)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_model() {
        assert_eq!(
            chain("a.txt", b"ab\ncd"),
            [("a.txt".to_string(), b"1: AB\n2: CD\nlines: 2\n".to_vec())]
        );
    }

    #[test]
    fn fanjoin_model() {
        assert_eq!(
            fanjoin("in1.txt", b"1\n2\n3\n"),
            [("in1.joined".to_string(), b"L:1\nL:3\nR:2\n".to_vec())]
        );
    }

    #[test]
    fn dummy_app_model() {
        let out = dummy_app("1botnet.ipsum", b"x\n");
        assert_eq!(out[0].0, "1botnet_task6.txt");
        assert!(out[0].1.starts_with(b"task6\ntask2\ntask0 -> task2\nx\ntask3\n"));
    }
}
