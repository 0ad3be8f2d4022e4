//! Arguments of `tail` and `attach`, which have options and shapes of their own.

use super::{Request, Stream, TAIL_DEFAULT_LINES, TAIL_MAX_LINES};

const TAIL_USAGE: &str = "usage: tail [-f] [-n N] NAME [stdout|stderr]";

/// `[-f] [-n N] NAME [stdout|stderr]`: options in any order, before NAME.
pub(super) fn parse_tail(args: &[String]) -> Result<Request, String> {
    let mut follow = false;
    let mut lines = TAIL_DEFAULT_LINES;
    let mut rest = args.iter();
    let name = loop {
        let Some(arg) = rest.next() else {
            return Err(format!("tail needs a NAME; {TAIL_USAGE}"));
        };
        match arg.as_str() {
            "-f" => follow = true,
            "-n" => lines = tail_lines(rest.next().map(String::as_str))?,
            // `-n20`, as tail(1) takes it.
            a if a.starts_with("-n") => lines = tail_lines(Some(&a[2..]))?,
            a if a.starts_with('-') => {
                return Err(format!("tail: unknown option {a}; {TAIL_USAGE}"))
            }
            _ => break arg.clone(),
        }
    };
    let stream = match rest.next().map(String::as_str) {
        None | Some("stdout") => Stream::Stdout,
        Some("stderr") => Stream::Stderr,
        Some(other) => {
            return Err(format!(
                "tail: expected stdout or stderr after NAME, got {other:?}; {TAIL_USAGE}"
            ))
        }
    };
    if let Some(extra) = rest.next() {
        return Err(format!("tail: unexpected {extra:?}; {TAIL_USAGE}"));
    }
    Ok(Request::Tail {
        follow,
        lines,
        name,
        stream,
    })
}

fn tail_lines(text: Option<&str>) -> Result<usize, String> {
    match text.map(str::parse::<usize>) {
        Some(Ok(n)) if n <= TAIL_MAX_LINES => Ok(n),
        _ => Err(format!(
            "tail: -n needs a number of lines from 0 to {TAIL_MAX_LINES}; {TAIL_USAGE}"
        )),
    }
}

/// `NAME [ROWSxCOLS]`.
pub(super) fn parse_attach(args: &[String]) -> Result<Request, String> {
    let usage = "usage: attach NAME [ROWSxCOLS]";
    let (name, size) = match args {
        [name] => (name, None),
        [name, size] => (
            name,
            Some(parse_size(size).ok_or_else(|| {
                format!("attach: the size is ROWSxCOLS, like 24x80, got {size:?}; {usage}")
            })?),
        ),
        _ => return Err(usage.into()),
    };
    if name.starts_with('-') {
        return Err(format!("attach: unknown option {name}; {usage}"));
    }
    Ok(Request::Attach {
        name: name.clone(),
        size,
    })
}

/// `24x80` as (rows, cols), both at least 1.
fn parse_size(text: &str) -> Option<(u16, u16)> {
    let (rows, cols) = text.split_once('x')?;
    let rows: u16 = rows.parse().ok()?;
    let cols: u16 = cols.parse().ok()?;
    (rows > 0 && cols > 0).then_some((rows, cols))
}
