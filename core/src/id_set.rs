//! The set of event ids a log holds: exact, and fast for the common case
//! of an id that is new.
//!
//! At a million events the obvious set — a hash table — costs two cache
//! misses into 16 MB on every insert (its control bytes, then the bucket
//! written), and those were most of the log's insert time. Here an insert
//! touches a filter word (8–16 bits an id: 1 MB at a million) and the tail
//! of one of a few thousand lists, which the cache mostly holds. Only when
//! the filter says "maybe" (one new id in a hundred to one in thirty) is a
//! list read: a few hundred entries in a row.
//!
//! Ids are known to the set by a 32-bit hash and the position of the event
//! holding each; the caller confirms a hash match against the event itself,
//! so ids that share a hash are still told apart. Ids crafted to share one
//! hash land in one list and make each check linear in their number:
//! slower, never wrong.

/// Bits of filter per id, at least (at most twice that, just after a
/// resize).
const MIN_BITS_PER_ID: usize = 8;
const MIN_WORDS: usize = 8;
/// Ids per list, on average, before the lists are split.
const IDS_PER_LIST: usize = 256;

#[derive(Debug, Clone)]
pub(crate) struct IdSet {
    /// A Bloom filter of the hashes claimed, blocked into 64-bit words: one
    /// word per id, so a check is one memory access. Its length is a power
    /// of two.
    filter: Vec<u64>,
    /// `(hash, position)` of every id claimed, split by the top bits of the
    /// mixed hash into a power-of-two number of lists.
    lists: Vec<Vec<(u32, u32)>>,
    /// Ids claimed: sizes the filter and the lists.
    len: usize,
}

impl Default for IdSet {
    fn default() -> Self {
        Self {
            filter: vec![0; MIN_WORDS],
            lists: vec![Vec::new()],
            len: 0,
        }
    }
}

impl IdSet {
    /// Claims `hash` for the event at `position`. False if an id already
    /// claimed is the same: `same(p)` tells whether the event at `p` has
    /// this id.
    pub(crate) fn claim(&mut self, hash: u32, position: u32, same: impl Fn(u32) -> bool) -> bool {
        let mixed = mix(hash);
        let (word, mask) = probe(mixed, self.filter.len());
        let list = top_bits(mixed, self.lists.len());
        if self.filter[word] & mask == mask
            && self.lists[list]
                .iter()
                .any(|&(held, at)| held == hash && same(at))
        {
            return false;
        }
        self.filter[word] |= mask;
        self.lists[list].push((hash, position));
        self.len += 1;
        if self.len * MIN_BITS_PER_ID > self.filter.len() * 64 {
            self.grow_filter();
        }
        if self.len > self.lists.len() * IDS_PER_LIST {
            self.split_lists();
        }
        true
    }

    #[cfg(test)]
    fn may_hold(&self, hash: u32) -> bool {
        let (word, mask) = probe(mix(hash), self.filter.len());
        self.filter[word] & mask == mask
    }

    fn grow_filter(&mut self) {
        self.filter = vec![0; self.filter.len() * 2];
        for &(hash, _) in self.lists.iter().flatten() {
            let (word, mask) = probe(mix(hash), self.filter.len());
            self.filter[word] |= mask;
        }
    }

    /// Doubles the lists: each splits in two by the next bit of the mixed
    /// hash, in one pass in order.
    fn split_lists(&mut self) {
        let count = self.lists.len() * 2;
        let mut lists = Vec::with_capacity(count);
        for list in self.lists.drain(..) {
            let (low, high): (Vec<_>, Vec<_>) = list
                .into_iter()
                .partition(|&(hash, _)| top_bits(mix(hash), count).is_multiple_of(2));
            lists.push(low);
            lists.push(high);
        }
        self.lists = lists;
    }
}

/// Spreads a 32-bit hash over 64 bits, so that its top bits and its low
/// bits are both usable.
fn mix(hash: u32) -> u64 {
    (u64::from(hash) | u64::from(hash) << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The top `log2(count)` bits of `mixed`; `count` is a power of two.
fn top_bits(mixed: u64, count: usize) -> usize {
    match count.trailing_zeros() {
        0 => 0,
        bits => (mixed >> (64 - bits)) as usize,
    }
}

/// The filter word for a mixed hash and the four bits it sets there (from
/// the low bits, independent of the top bits that pick the word).
fn probe(mixed: u64, words: usize) -> (usize, u64) {
    let mask = (0..4).fold(0u64, |mask, i| mask | 1 << ((mixed >> (6 * i)) & 63));
    (top_bits(mixed, words), mask)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::rng::Rng;

    /// Claims `id` under `hash` against `held` (the ids by position), as a
    /// log does.
    fn claim(set: &mut IdSet, held: &mut Vec<u32>, id: u32, hash: u32) -> bool {
        let position = held.len() as u32;
        let claimed = set.claim(hash, position, |at| held[at as usize] == id);
        if claimed {
            held.push(id);
        }
        claimed
    }

    #[test]
    fn ids_that_share_a_hash_are_still_told_apart() {
        let (mut set, mut held) = (IdSet::default(), Vec::new());
        assert!(claim(&mut set, &mut held, 1, 7));
        assert!(claim(&mut set, &mut held, 2, 7), "same hash, other id");
        assert!(claim(&mut set, &mut held, 3, 7));
        assert!(
            !claim(&mut set, &mut held, 2, 7),
            "found among the collisions"
        );
        assert!(!claim(&mut set, &mut held, 1, 7));
        assert!(!claim(&mut set, &mut held, 3, 7));
        assert_eq!(held, [1, 2, 3]);
    }

    /// Against a plain map, through filter resizes, false "maybe"s and
    /// forced hash collisions: a 12-bit hash space for 20 000 ids makes
    /// every hash shared by several ids.
    #[test]
    fn answers_exactly_like_a_map() {
        for seed in 0..4 {
            let mut rng = Rng::new(seed);
            let (mut set, mut held) = (IdSet::default(), Vec::new());
            let mut model = HashSet::new();
            for _ in 0..30_000 {
                let id = rng.below_or_eq(20_000) as u32;
                let hash = id.wrapping_mul(2_654_435_761) >> 20;
                let expected = model.insert(id);
                assert_eq!(
                    claim(&mut set, &mut held, id, hash),
                    expected,
                    "seed {seed} id {id}"
                );
            }
            assert_eq!(held.len(), model.len());
        }
    }

    #[test]
    fn the_filter_rarely_says_maybe_for_a_new_id() {
        let (mut set, mut held) = (IdSet::default(), Vec::new());
        let hash = |id: u32| id.wrapping_mul(2_654_435_761);
        for id in 0..100_000u32 {
            assert!(claim(&mut set, &mut held, id, hash(id)));
        }
        let maybes = (100_000..200_000u32)
            .filter(|&id| set.may_hold(hash(id)))
            .count();
        // 8–16 bits an id, four of them set: 1–3 % (a probe that sets
        // fewer bits, or crowds ids into fewer words, gives far more).
        assert!(maybes < 5_000, "{maybes} false maybes in 100 000");
        assert!(
            (0..100_000).all(|id| set.may_hold(hash(id))),
            "no false 'no'"
        );
    }
}
