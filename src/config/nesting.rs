//! A linear pre-scan that refuses deeply nested YAML before serde_yaml sees it.
//!
//! libyaml's scanner walks its stack of open flow collections for every token, so
//! 100 000 `[` cost seconds before serde_yaml's own recursion limit (128) says no.
//! A config needs about five levels; this scan measures the depth of block
//! indentation plus open `[`/`{` in one pass and stops at the first line deeper
//! than `MAX_DEPTH`.
//!
//! It is a sketch of YAML's lexical rules, not a parser: it knows quoted scalars,
//! block scalars (`|`, `>`) and comments, so brackets inside them are not counted,
//! and it only sees a `[` or `{` as a collection where a node may start. When it
//! cannot tell, it errs on the side of counting less; serde_yaml stays the judge
//! of what the text means, and its own limit remains the backstop.

/// Deepest nesting accepted, block and flow levels together.
pub const MAX_DEPTH: usize = 64;

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    /// 1-based line of `b[i]`.
    line: usize,
    /// Indentation of each open block level.
    indents: Vec<usize>,
    /// Open `[` and `{`.
    flow: usize,
    /// Whether a node (and so a collection or a quoted scalar) may start here.
    node_start: bool,
}

/// `Err(line)`: the first line where the nesting goes deeper than `MAX_DEPTH`.
pub fn check(text: &str) -> Result<(), usize> {
    let mut s = Scan {
        b: text.as_bytes(),
        i: 0,
        line: 1,
        indents: Vec::new(),
        flow: 0,
        node_start: true,
    };
    s.begin_line(None)?;
    while let Some(&c) = s.b.get(s.i) {
        match c {
            b'\n' => {
                s.i += 1;
                s.line += 1;
                s.begin_line(None)?;
                continue;
            }
            b' ' | b'\t' | b'\r' => {}
            b'#' if s.after_blank() => {
                s.skip_line();
                continue;
            }
            b'[' | b'{' if s.flow > 0 || s.node_start => {
                s.flow += 1;
                s.node_start = true;
                s.depth_ok()?;
            }
            b']' | b'}' if s.flow > 0 => {
                s.flow -= 1;
                s.node_start = false;
            }
            b',' if s.flow > 0 => s.node_start = true,
            b'"' | b'\'' if s.node_start => {
                s.skip_quoted();
                s.node_start = false;
                continue;
            }
            b'|' | b'>' if s.node_start && s.flow == 0 => {
                // A block scalar: its content is every following line indented
                // more than this one (or blank).
                let indent = s.indents.last().copied().unwrap_or(0);
                s.skip_line();
                if s.i < s.b.len() {
                    s.i += 1;
                    s.line += 1;
                    s.begin_line(Some(indent))?;
                }
                continue;
            }
            // `key: `, `- item`, `? key` (and `:` anywhere in flow) open a node.
            b':' if s.flow > 0 => s.node_start = true,
            b':' | b'-' | b'?' if s.blank_at(s.i + 1) => s.node_start = true,
            // An anchor or a tag comes before its node, which may still start.
            b'&' | b'!' if s.node_start => {
                while s.i < s.b.len() && !s.blank_at(s.i) && !is_flow_indicator(s.b[s.i]) {
                    s.i += 1;
                }
                continue;
            }
            _ => s.node_start = false,
        }
        s.i += 1;
    }
    Ok(())
}

fn is_flow_indicator(c: u8) -> bool {
    matches!(c, b'[' | b']' | b'{' | b'}' | b',')
}

impl Scan<'_> {
    fn depth_ok(&self) -> Result<(), usize> {
        if self.indents.len() + self.flow > MAX_DEPTH {
            Err(self.line)
        } else {
            Ok(())
        }
    }

    /// Space, tab, line break or end of text at `i`.
    fn blank_at(&self, i: usize) -> bool {
        matches!(self.b.get(i), None | Some(b' ' | b'\t' | b'\r' | b'\n'))
    }

    /// A `#` starts a comment at the start of a line or after a blank.
    fn after_blank(&self) -> bool {
        self.i == 0 || self.blank_at(self.i - 1)
    }

    /// Moves to the line break ending this line (or the end of the text).
    fn skip_line(&mut self) {
        while self.i < self.b.len() && self.b[self.i] != b'\n' {
            self.i += 1;
        }
    }

    /// From an opening quote to just after its closing one, across lines.
    fn skip_quoted(&mut self) {
        let q = self.b[self.i];
        self.i += 1;
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            match c {
                b'\n' => self.line += 1,
                b'\\' if q == b'"' => {
                    if self.b.get(self.i) == Some(&b'\n') {
                        self.line += 1;
                    }
                    self.i += 1;
                }
                _ if c == q => {
                    // In single quotes, `''` is an escaped quote.
                    if q == b'\'' && self.b.get(self.i) == Some(&b'\'') {
                        self.i += 1;
                    } else {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// At the start of a line: skips the lines of a block scalar opened at
    /// indentation `scalar` (if any), then records this line's block level.
    fn begin_line(&mut self, scalar: Option<usize>) -> Result<(), usize> {
        loop {
            let start = self.i;
            while self.b.get(self.i) == Some(&b' ') {
                self.i += 1;
            }
            let indent = self.i - start;
            let blank = self.blank_at(self.i) || self.b[self.i] == b'#';
            if scalar.is_some_and(|n| blank || indent > n) && self.i < self.b.len() {
                self.skip_line();
                if self.i < self.b.len() {
                    self.i += 1;
                    self.line += 1;
                }
                continue;
            }
            if self.flow == 0 {
                self.node_start = true;
                if !blank {
                    while self.indents.last().is_some_and(|&n| n >= indent) {
                        self.indents.pop();
                    }
                    self.indents.push(indent);
                    self.depth_ok()?;
                }
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_pass() {
        for text in [
            "",
            "programs:\n  web:\n    cmd: \"a [b\"\n    env:\n      A: '[[['\n",
            "programs: {web: {cmd: x, exitcodes: [0, 1]}}\n",
            "programs:\n  web:\n    cmd: echo [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
            "programs:\n  web:\n    cmd: |\n      [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n\n      x\n    numprocs: 1\n",
            "a: \"x\\\" [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\n",
            "a: 'it''s [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n",
            "a: [x, y] # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
        ] {
            assert_eq!(check(text), Ok(()), "{text}");
        }
        let deep = "[".repeat(MAX_DEPTH - 1) + &"]".repeat(MAX_DEPTH - 1);
        assert_eq!(check(&format!("a: {deep}\n")), Ok(()));
    }

    #[test]
    fn deep_nesting_is_refused_at_its_line() {
        assert_eq!(check(&format!("a:\n  b: {}", "[".repeat(100_000))), Err(2));
        assert_eq!(check(&format!("a: {}", "{x: ".repeat(100_000))), Err(1));
        // Line N (N >= 2) is at depth N + 1: `a`, the indented line, N - 1 `[`.
        assert_eq!(
            check(&format!("a:\n{}", "  [\n".repeat(100))),
            Err(MAX_DEPTH)
        );
        let block: String = (0..100).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert_eq!(check(&block), Err(MAX_DEPTH + 1));
        let seq: String = (0..100).map(|i| format!("{}- \n", " ".repeat(i))).collect();
        assert_eq!(check(&seq), Err(MAX_DEPTH + 1));
    }
}
