//! Property tests of the telnet filter: any bytes in any chunks; text with
//! negotiation woven in comes out as the text alone.

use super::*;
use proptest::prelude::*;

/// Feeds `input` cut at `cuts` (offsets, taken modulo its length): the text,
/// and the replies of each call.
fn feed_chunked(input: &[u8], cuts: &[prop::sample::Index]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
    at.push(0);
    at.push(input.len());
    at.sort_unstable();
    let mut f = Filter::default();
    let (mut out, mut replies) = (Vec::new(), Vec::new());
    for w in at.windows(2) {
        let mut r = Vec::new();
        f.feed(&input[w[0]..w[1]], &mut out, &mut r);
        replies.push(r);
    }
    (out, replies)
}

/// One unit of what a telnet client sends.
#[derive(Clone, Debug)]
enum Piece {
    /// A text byte, as the text means it.
    Text(u8),
    /// `IAC verb opt`.
    Negotiate(u8, u8),
    /// `IAC SB opt data… IAC SE`.
    Sub(u8, Vec<u8>),
    /// A two-byte command that carries no text: NOP, DM, BRK, AO, AYT, EC, GA.
    Command(u8),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        6 => any::<u8>().prop_map(Piece::Text),
        2 => prop::sample::select(b"\r\n\0\xff".to_vec()).prop_map(Piece::Text),
        2 => (WILL..=DONT, any::<u8>()).prop_map(|(v, o)| Piece::Negotiate(v, o)),
        1 => (any::<u8>(), prop::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(o, d)| Piece::Sub(o, d)),
        1 => prop::sample::select(vec![241u8, 242, 243, 245, 246, 247, 249]).prop_map(Piece::Command),
    ]
}

/// The bytes on the wire, and the text the filter must give: a text 255 is
/// escaped (`IAC IAC`), a text CR is followed by NUL (the NVT's bare CR; a
/// CR NUL NUL is then CR and a real NUL), a 255 in a subnegotiation (its
/// option code included) is escaped too.
fn encode(pieces: &[Piece]) -> (Vec<u8>, Vec<u8>) {
    let (mut wire, mut text) = (Vec::new(), Vec::new());
    for p in pieces {
        match p {
            Piece::Text(IAC) => wire.extend_from_slice(&[IAC, IAC]),
            Piece::Text(b'\r') => wire.extend_from_slice(b"\r\0"),
            Piece::Text(b) => wire.push(*b),
            Piece::Negotiate(verb, opt) => wire.extend_from_slice(&[IAC, *verb, *opt]),
            Piece::Sub(opt, data) => {
                wire.extend_from_slice(&[IAC, SB]);
                for b in std::iter::once(opt).chain(data) {
                    if *b == IAC {
                        wire.push(IAC);
                    }
                    wire.push(*b);
                }
                wire.extend_from_slice(&[IAC, SE]);
            }
            Piece::Command(c) => wire.extend_from_slice(&[IAC, *c]),
        }
        if let Piece::Text(b) = p {
            text.push(*b);
        }
    }
    (wire, text)
}

/// Every reply is `IAC WILL|WONT|DONT opt`, and no call gave more than the bound.
fn replies_well_formed(replies: &[Vec<u8>]) -> Result<(), TestCaseError> {
    for r in replies {
        prop_assert!(r.len() <= MAX_REPLY_BYTES, "{} bytes in one call", r.len());
        prop_assert_eq!(r.len() % 3, 0);
        for t in r.chunks(3) {
            prop_assert!(t[0] == IAC && matches!(t[1], WILL | WONT | DONT), "{:?}", t);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_env::cases(512)))]

    /// Any bytes: no panic, never more text than input, the same text however
    /// the bytes are cut, and only well-formed replies.
    #[test]
    fn any_bytes_any_chunks(
        input in prop::collection::vec(
            prop_oneof![any::<u8>(), prop::sample::select(vec![IAC, SB, SE, IP, EL, WILL, DO, 0, b'\r', b'\n'])],
            0..300,
        ),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let (whole, whole_replies) = feed_chunked(&input, &[]);
        let (chunked, chunked_replies) = feed_chunked(&input, &cuts);
        prop_assert!(whole.len() <= input.len());
        prop_assert_eq!(&whole, &chunked);
        replies_well_formed(&whole_replies)?;
        replies_well_formed(&chunked_replies)?;
        // Under the per-call bound nothing was skipped, so cutting the input
        // cannot change what is answered either.
        let total: Vec<u8> = whole_replies.concat();
        if total.len() + 3 <= MAX_REPLY_BYTES {
            prop_assert_eq!(total, chunked_replies.concat());
        }
    }

    /// Text with negotiation, subnegotiation and commands woven in comes out
    /// as exactly the text: nothing of a command is left in it.
    #[test]
    fn negotiation_never_reaches_the_text(
        pieces in prop::collection::vec(piece(), 0..120),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let (wire, text) = encode(&pieces);
        let (out, replies) = feed_chunked(&wire, &cuts);
        prop_assert_eq!(out, text);
        replies_well_formed(&replies)?;
    }

    /// `IAC IP` (Ctrl-C) drops exactly the partial line before it.
    #[test]
    fn interrupt_drops_the_partial_line(
        before in prop::collection::vec(piece(), 0..60),
        after in prop::collection::vec(piece(), 0..60),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        erase in prop::sample::select(vec![IP, EL]),
    ) {
        let (mut wire, head) = encode(&before);
        let (tail_wire, tail) = encode(&after);
        wire.extend_from_slice(&[IAC, erase]);
        wire.extend_from_slice(&tail_wire);
        let keep = head.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let want = [&head[..keep], &tail[..]].concat();
        prop_assert_eq!(feed_chunked(&wire, &cuts).0, want);
    }
}
