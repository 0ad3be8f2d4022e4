//! Refuses YAML whose aliases expand to far more than its text.
//!
//! serde_yaml copies an anchored node at every alias (`*a`) that names it.
//! Its own guard counts alias *jumps* (at most 100 per event), which stops the
//! classic "billion laughs" (aliases of aliases), but not a wide one: one
//! anchor of 3 000 items named by 3 000 aliases is 15 KB of text, 9 million
//! nodes, 10 s (debug build) and 900 MiB of `Value`s; 50 KB took more than
//! 2 GiB. So before serde_yaml builds anything, one pass walks the document
//! as serde_yaml will (aliases followed), building nothing and counting nodes,
//! and stops at `budget(text)`: work and memory stay proportional to the text.

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// Nodes the expanded document may have beyond twice its bytes. Without
/// aliases a node takes at least one byte of text (`{a,b}` is five nodes in
/// five bytes), so no alias-free text comes near the budget; aliases may add
/// this much, which is plenty for sharing an `env` block across programs.
pub const EXTRA_NODES: usize = 100_000;

/// The most nodes `text` may expand to.
pub fn budget(text: &str) -> usize {
    text.len().saturating_mul(2).saturating_add(EXTRA_NODES)
}

/// `Err(line)` (when serde_yaml knows it) if the aliases of `text` expand past
/// `budget(text)`. Syntax errors are not reported here: serde_yaml's real
/// parse that follows reports them with their position.
pub fn check(text: &str) -> Result<(), Option<usize>> {
    // No `*`, no alias: the common case costs one scan of the bytes.
    if !text.as_bytes().contains(&b'*') {
        return Ok(());
    }
    let left = Cell::new(budget(text));
    // As a whole, not document by document: serde_yaml's document iterator
    // can yield without end on some broken texts, and a config is one document.
    match Count(&left).deserialize(serde_yaml::Deserializer::from_str(text)) {
        Err(e) if left.get() == 0 => Err(e.location().map(|l| l.line())),
        // Any other error is the real parse's to report.
        _ => Ok(()),
    }
}

/// Counts one node (and everything below it) against the nodes left.
#[derive(Clone, Copy)]
struct Count<'a>(&'a Cell<usize>);

impl Count<'_> {
    fn take<E: de::Error>(self) -> Result<(), E> {
        match self.0.get().checked_sub(1) {
            Some(n) if n > 0 => {
                self.0.set(n);
                Ok(())
            }
            _ => {
                self.0.set(0);
                Err(E::custom("aliases expand the document too far"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.take()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.take()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.take()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.take()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.take()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.take()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.take()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.take()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.take()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.take()?;
        self.deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.take()?;
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.take()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.take()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    /// A node with a custom tag (`!t value`): the tag, then the value.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        self.take()?;
        let ((), variant) = data.variant_seed(self)?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` aliases of one anchored list of `n` items.
    fn wide(n: usize) -> String {
        let items = vec!["x"; n].join(",");
        let refs = vec!["*b"; n].join(",");
        format!("big: &b [{items}]\nrefs: [{refs}]\n")
    }

    #[test]
    fn texts_without_many_aliases_pass() {
        for text in [
            "",
            "a: 1\n",
            "cmd: sh -c 'ls *.log'\n",
            "e: &e {A: 1, B: 2}\np: {x: *e, y: *e, z: *e}\n",
            "t: &t !tag [1, 2]\nu: [*t, *t]\nv: !other *t\n",
            "a: &a\n- 1\n- 2\nb: *a\n",
            // Syntax errors are left to the real parse.
            "a: *nowhere\n",
            "a: [*\n",
        ] {
            assert_eq!(check(text), Ok(()), "{text}");
        }
        assert_eq!(check(&wide(100)), Ok(()));
    }

    /// 1000 programs sharing one `env` of 20 variables through an alias.
    #[test]
    fn a_shared_block_across_many_programs_passes() {
        let vars: String = (0..20).map(|i| format!("    V{i}: value{i}\n")).collect();
        let mut text = format!("env: &env\n{vars}programs:\n");
        for i in 0..1000 {
            text.push_str(&format!("  p{i}:\n    cmd: /bin/true\n    env: *env\n"));
        }
        assert_eq!(check(&text), Ok(()));
    }

    #[test]
    fn wide_and_deep_bombs_are_refused() {
        assert!(check(&wide(3000)).is_err());
        // The classic: nine levels of nine aliases of the level below.
        let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        assert!(check(&laughs).is_err());
        // Mapping keys are expanded too.
        let keys: String = (0..2000).map(|i| format!("? *b\n: {i}\n")).collect();
        let text = format!(
            "big: &b [{}]\nm:\n{}",
            vec!["x"; 2000].join(","),
            indent(&keys)
        );
        assert!(check(&text).is_err());
    }

    fn indent(text: &str) -> String {
        text.lines().map(|l| format!("  {l}\n")).collect()
    }
}
