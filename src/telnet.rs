//! Telnet framing on the TCP listener: a telnet client may send IAC command
//! sequences (option negotiation, Ctrl-C as `IAC IP`); they are commands to the
//! connection, not text, so they are removed before line framing. `IAC IAC`
//! is a literal 255. `IAC IP` and `IAC EL` drop the partial line, as a
//! terminal's Ctrl-C and Ctrl-U would. `CR NUL` (the NVT's bare carriage
//! return, sent by telnet for a typed or piped `\r`) is a plain `CR`.
//!
//! Negotiation is answered, because a telnet client waits for answers: on
//! Ctrl-C it sends `IAC IP IAC DO TIMING-MARK` and discards all output until
//! `IAC WILL TIMING-MARK` comes back, so without it the session goes deaf.
//! Every other option is refused (`DO x` → `WONT x`, `WILL x` → `DONT x`): the
//! daemon speaks plain NVT text. `WONT`/`DONT` are never answered: every
//! option is already off on our side, and answering a refusal is how two
//! peers loop (RFC 854, RFC 1143).

const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const IP: u8 = 244;
const EL: u8 = 248;
const WILL: u8 = 251;
const WONT: u8 = 252;
const DO: u8 = 253;
const DONT: u8 = 254;
/// RFC 860: a mark in the stream, never an enabled state.
const TIMING_MARK: u8 = 6;

/// At most this many reply bytes per `feed`: a peer flooding `DO TIMING-MARK`
/// (answered every time) gets no more than this per read. Legitimate clients
/// send a handful of requests at a time.
pub const MAX_REPLY_BYTES: usize = 64 * 3;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum State {
    #[default]
    Data,
    Iac,
    /// After WILL/WONT/DO/DONT (the verb): one option byte follows.
    Option(u8),
    /// Inside `IAC SB … IAC SE`.
    Sub,
    SubIac,
}

/// A set of the 256 option codes.
#[derive(Clone, Copy, Debug, Default)]
struct OptionSet([u64; 4]);

impl OptionSet {
    /// Adds `opt`; false if it was already there.
    fn insert(&mut self, opt: u8) -> bool {
        let (word, bit) = (usize::from(opt / 64), 1u64 << (opt % 64));
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }
}

#[derive(Debug, Default)]
pub struct Filter {
    state: State,
    /// The last text byte was CR: a NUL now is padding.
    after_cr: bool,
    /// Options whose `DO` / `WILL` we already refused: each is refused once
    /// per connection, so a peer repeating requests cannot make us talk
    /// without end (a well-behaved peer does not ask again after a refusal).
    refused_do: OptionSet,
    refused_will: OptionSet,
}

impl Filter {
    /// Appends the text bytes of `input` to `out` and the negotiation
    /// answers to `replies` (raw bytes for the peer, at most
    /// `MAX_REPLY_BYTES` per call).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, replies: &mut Vec<u8>) {
        let reply_limit = replies.len() + MAX_REPLY_BYTES;
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
                (State::Iac, WILL..=DONT) => State::Option(b),
                (State::Iac, IP | EL) => {
                    let keep = out.iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
                    out.truncate(keep);
                    State::Data
                }
                (State::Option(verb), opt) => {
                    // Over the limit the request goes unanswered and is not
                    // recorded as refused: a later one may still be answered.
                    if replies.len() + 3 <= reply_limit {
                        if let Some(answer) = self.answer(verb, opt) {
                            replies.extend_from_slice(&[IAC, answer, opt]);
                        }
                    }
                    State::Data
                }
                (State::Iac, _) => State::Data,
                (State::Sub, IAC) => State::SubIac,
                (State::Sub, _) => State::Sub,
                (State::SubIac, SE) => State::Data,
                (State::SubIac, _) => State::Sub,
            };
        }
    }

    /// The verb to answer `IAC verb opt` with, if any.
    fn answer(&mut self, verb: u8, opt: u8) -> Option<u8> {
        match verb {
            DO if opt == TIMING_MARK => Some(WILL),
            DO => self.refused_do.insert(opt).then_some(WONT),
            WILL => self.refused_will.insert(opt).then_some(DONT),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: u8 = 1;
    const SGA: u8 = 3;

    /// The text and the replies of feeding `chunks` one by one to one filter.
    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
        let mut f = Filter::default();
        let (mut out, mut replies) = (Vec::new(), Vec::new());
        for c in chunks {
            f.feed(c, &mut out, &mut replies);
        }
        (out, replies)
    }

    fn text(chunks: &[&[u8]]) -> Vec<u8> {
        run(chunks).0
    }

    #[test]
    fn plain_text_passes() {
        assert_eq!(run(&[b"status\r\n"]), (b"status\r\n".to_vec(), vec![]));
    }

    #[test]
    fn negotiation_is_removed_even_split_across_reads() {
        let input: &[u8] = &[IAC, DO, ECHO, b's', IAC, WILL, SGA, b't', b'\n'];
        assert_eq!(text(&[input]), b"st\n");
        assert_eq!(text(&[&[IAC], &[DO], &[ECHO, b'x']]), b"x");
    }

    #[test]
    fn subnegotiation_is_removed() {
        let input: &[u8] = &[b'a', IAC, SB, 24, 0, b'x', b'y', IAC, SE, b'b'];
        assert_eq!(text(&[input]), b"ab");
    }

    #[test]
    fn cr_nul_is_a_carriage_return() {
        assert_eq!(text(&[b"stop a\r\0\r\n"]), b"stop a\r\r\n");
        assert_eq!(text(&[b"a\r", b"\0b\0"]), b"a\rb\0");
    }

    #[test]
    fn escaped_iac_is_a_byte() {
        assert_eq!(text(&[&[b'a', IAC, IAC, b'b']]), vec![b'a', 255, b'b']);
        // An escaped 255 followed by DO is text, not a request.
        assert_eq!(run(&[&[IAC, IAC, DO, ECHO]]), (vec![255, DO, ECHO], vec![]));
    }

    #[test]
    fn interrupt_drops_the_partial_line_only() {
        let input: &[u8] = &[b'o', b'k', b'\n', b's', b't', IAC, IP, b'h', b'\n'];
        assert_eq!(text(&[input]), b"ok\nh\n");
        assert_eq!(text(&[b"abc", &[IAC, EL], b"d"]), b"d");
    }

    #[test]
    fn ctrl_c_gets_its_timing_mark_even_split_across_reads() {
        // What telnet sends on Ctrl-C, after a half-typed command.
        let whole: &[u8] = &[b's', b't', IAC, IP, IAC, DO, TIMING_MARK];
        assert_eq!(run(&[whole]), (vec![], vec![IAC, WILL, TIMING_MARK]));
        for cut in 1..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(run(&[a, b]).1, [IAC, WILL, TIMING_MARK], "cut at {cut}");
        }
        let bytes: Vec<[u8; 1]> = whole.iter().map(|b| [*b]).collect();
        let chunks: Vec<&[u8]> = bytes.iter().map(|b| &b[..]).collect();
        assert_eq!(run(&chunks), (vec![], vec![IAC, WILL, TIMING_MARK]));
    }

    #[test]
    fn timing_mark_is_answered_every_time() {
        let tm: &[u8] = &[IAC, DO, TIMING_MARK];
        let (out, replies) = run(&[tm, b"status\r\n", tm, tm]);
        assert_eq!(out, b"status\r\n");
        assert_eq!(replies, [IAC, WILL, TIMING_MARK].repeat(3));
    }

    #[test]
    fn other_options_are_refused_once() {
        let (out, replies) = run(&[
            &[IAC, DO, ECHO, IAC, WILL, SGA, b'x'],
            &[IAC, DO, ECHO, IAC, WILL, SGA],
            &[IAC, DO, SGA, IAC, WILL, ECHO, IAC, WILL, TIMING_MARK],
        ]);
        assert_eq!(out, b"x");
        assert_eq!(
            replies,
            [
                [IAC, WONT, ECHO],
                [IAC, DONT, SGA],
                // DO and WILL of one option are separate requests.
                [IAC, WONT, SGA],
                [IAC, DONT, ECHO],
                // Only DO TIMING-MARK is special; the peer offering it is refused.
                [IAC, DONT, TIMING_MARK],
            ]
            .concat()
        );
    }

    #[test]
    fn refusals_are_not_answered() {
        let input: &[u8] = &[IAC, WONT, ECHO, IAC, DONT, ECHO, IAC, DONT, TIMING_MARK];
        assert_eq!(run(&[input, input]), (vec![], vec![]));
    }

    #[test]
    fn negotiation_inside_a_subnegotiation_is_not_answered() {
        let input: &[u8] = &[IAC, SB, 24, IAC, DO, ECHO, IAC, SE, b'a'];
        assert_eq!(run(&[input]), (b"a".to_vec(), vec![]));
    }

    #[test]
    fn replies_are_bounded_per_feed() {
        let flood = [IAC, DO, TIMING_MARK].repeat(1000);
        let mut f = Filter::default();
        let (mut out, mut replies) = (Vec::new(), Vec::new());
        f.feed(&flood, &mut out, &mut replies);
        assert_eq!(replies.len(), MAX_REPLY_BYTES);
        assert!(out.is_empty());
        // The bound is per call, counted from what `replies` already held.
        f.feed(&flood, &mut out, &mut replies);
        assert_eq!(replies.len(), 2 * MAX_REPLY_BYTES);
        // A refusal skipped for the bound is given on a later request.
        let mut requests = flood.clone();
        requests.extend_from_slice(&[IAC, DO, ECHO]);
        let mut f = Filter::default();
        let mut replies = Vec::new();
        f.feed(&requests, &mut out, &mut replies);
        assert!(!replies.ends_with(&[IAC, WONT, ECHO]));
        replies.clear();
        f.feed(&[IAC, DO, ECHO], &mut out, &mut replies);
        assert_eq!(replies, [IAC, WONT, ECHO]);
    }

    #[test]
    fn every_option_refused_costs_a_bounded_total() {
        // Each of the 256 options asked both ways, many times over.
        let mut f = Filter::default();
        let (mut out, mut total) = (Vec::new(), 0);
        for _ in 0..4 {
            for opt in 0..=255u8 {
                if opt == TIMING_MARK {
                    continue;
                }
                let mut replies = Vec::new();
                f.feed(&[IAC, DO, opt, IAC, WILL, opt], &mut out, &mut replies);
                total += replies.len();
            }
        }
        assert_eq!(total, 255 * 2 * 3);
        assert!(out.is_empty());
    }
}

#[cfg(test)]
#[path = "telnet_proptests.rs"]
mod proptests;
