//! Telnet framing on the TCP listener: a telnet client may send IAC command
//! sequences (option negotiation, Ctrl-C as `IAC IP`); they are commands to the
//! connection, not text, so they are removed before line framing. `IAC IAC`
//! is a literal 255. `IAC IP` and `IAC EL` drop the partial line, as a
//! terminal's Ctrl-C and Ctrl-U would. `CR NUL` (the NVT's bare carriage
//! return, sent by telnet for a typed or piped `\r`) is a plain `CR`.

const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const IP: u8 = 244;
const EL: u8 = 248;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum State {
    #[default]
    Data,
    Iac,
    /// WILL/WONT/DO/DONT: one option byte follows.
    Option,
    /// Inside `IAC SB … IAC SE`.
    Sub,
    SubIac,
}

#[derive(Debug, Default)]
pub struct Filter {
    state: State,
    /// The last text byte was CR: a NUL now is padding.
    after_cr: bool,
}

impl Filter {
    /// Appends the text bytes of `input` to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, _replies: &mut Vec<u8>) {
        for &b in input {
            let after_cr = std::mem::take(&mut self.after_cr);
            self.state = match (self.state, b) {
                (State::Data, IAC) => State::Iac,
                (State::Data, 0) if after_cr => State::Data,
                (State::Data, b) => {
                    out.push(b);
                    self.after_cr = b == b'\r';
                    State::Data
                }
                (State::Iac, IAC) => {
                    out.push(IAC);
                    State::Data
                }
                (State::Iac, SB) => State::Sub,
                (State::Iac, 251..=254) => State::Option,
                (State::Iac, IP | EL) => {
                    let keep = out.iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
                    out.truncate(keep);
                    State::Data
                }
                (State::Iac, _) | (State::Option, _) => State::Data,
                (State::Sub, IAC) => State::SubIac,
                (State::Sub, _) => State::Sub,
                (State::SubIac, SE) => State::Data,
                (State::SubIac, _) => State::Sub,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<u8> {
        let mut f = Filter::default();
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out, &mut Vec::new());
        }
        out
    }

    #[test]
    fn plain_text_passes() {
        assert_eq!(run(&[b"status\r\n"]), b"status\r\n");
    }

    #[test]
    fn negotiation_is_removed_even_split_across_reads() {
        let input: &[u8] = &[IAC, 253, 1, b's', IAC, 251, 3, b't', b'\n'];
        assert_eq!(run(&[input]), b"st\n");
        assert_eq!(run(&[&[IAC], &[253], &[1, b'x']]), b"x");
    }

    #[test]
    fn subnegotiation_is_removed() {
        let input: &[u8] = &[b'a', IAC, SB, 24, 0, b'x', b'y', IAC, SE, b'b'];
        assert_eq!(run(&[input]), b"ab");
    }

    #[test]
    fn cr_nul_is_a_carriage_return() {
        assert_eq!(run(&[b"stop a\r\0\r\n"]), b"stop a\r\r\n");
        assert_eq!(run(&[b"a\r", b"\0b\0"]), b"a\rb\0");
    }

    #[test]
    fn escaped_iac_is_a_byte() {
        assert_eq!(run(&[&[b'a', IAC, IAC, b'b']]), vec![b'a', 255, b'b']);
    }

    #[test]
    fn interrupt_drops_the_partial_line_only() {
        let input: &[u8] = &[b'o', b'k', b'\n', b's', b't', IAC, IP, b'h', b'\n'];
        assert_eq!(run(&[input]), b"ok\nh\n");
        assert_eq!(run(&[b"abc", &[IAC, EL], b"d"]), b"d");
    }
}
