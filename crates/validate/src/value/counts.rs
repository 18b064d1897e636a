//! Sets of suite values and exact value counts: a fast hash map up to a bound, then
//! a sorted spill to temporary files.

use super::*;

/// A set of suite values, with fast lookups for the common cases (all strings or all
/// integers).
pub struct ValueSet {
    strings: std::collections::HashSet<String, std::hash::BuildHasherDefault<FastHasher>>,
    ints: std::collections::HashSet<i64, std::hash::BuildHasherDefault<FastHasher>>,
    others: Vec<Json>,
}

impl ValueSet {
    pub fn new(values: &[Json]) -> ValueSet {
        let mut set = ValueSet {
            strings: Default::default(),
            ints: Default::default(),
            others: Vec::new(),
        };
        for v in values {
            match v {
                Json::String(s) => {
                    set.strings.insert(s.clone());
                    set.others.push(v.clone());
                }
                Json::Number(n) if n.as_i64().is_some() => {
                    set.ints.insert(n.as_i64().unwrap_or_default());
                    set.others.push(v.clone());
                }
                _ => set.others.push(v.clone()),
            }
        }
        set
    }

    pub fn contains(&self, v: &Val<'_>) -> bool {
        match v {
            Val::Str(s) => self.strings.contains(*s),
            Val::Int(i) => self.ints.contains(i) || self.others.iter().any(|j| equals_json(v, j)),
            _ => self.others.iter().any(|j| equals_json(v, j)),
        }
    }

    pub fn contains_key(&self, k: &Key) -> bool {
        self.contains(&k.as_val())
    }

    pub fn values(&self) -> &[Json] {
        &self.others
    }
}

/// A fast, non-cryptographic hasher for counting values (the Fx multiply-rotate
/// scheme): several times faster than the standard SipHash on short keys. Not
/// resistant to crafted collisions, which only slows a validation down.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl std::hash::Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.write_u64(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.write_u64(u64::from_le_bytes(tail) ^ rest.len() as u64);
    }

    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }

    #[inline]
    fn write_i64(&mut self, word: i64) {
        self.write_u64(word as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Mix the high bits down: hashbrown picks buckets from the low bits.
        self.0 ^ (self.0 >> 29)
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// Distinct integers, floats or timestamps counted in a hash map before switching to a
/// sorted list.
const SPILL: usize = 1 << 16;

/// A float's bits as a key whose unsigned order is the numbers' order.
fn float_order(bits: u64) -> u64 {
    kiln_stats::sketch::ordered_key(f64::from_bits(bits))
}

fn float_from_order(key: u64) -> u64 {
    kiln_stats::sketch::from_key(key).to_bits()
}

/// Counts of one kind of fixed-size value: a hash map while there are few distinct
/// values, then sorted runs spilled to temporary files ([`SortedSpill`]), so memory
/// stays at one chunk however many distinct values there are.
struct Spillable<T: Word + std::hash::Hash> {
    map: FastMap<T, u64>,
    list: Option<SortedSpill<T>>,
}

impl<T: Word + std::hash::Hash> Default for Spillable<T> {
    fn default() -> Self {
        Spillable {
            map: FastMap::default(),
            list: None,
        }
    }
}

impl<T: Word + std::hash::Hash> Spillable<T> {
    #[inline]
    fn add(&mut self, value: T) {
        match &mut self.list {
            Some(list) => list.push(value),
            None => {
                *self.map.entry(value).or_default() += 1;
                if self.map.len() > SPILL {
                    let mut list = SortedSpill::default();
                    for (k, c) in self.map.drain() {
                        list.extend(std::iter::repeat_n(k, c as usize));
                    }
                    self.list = Some(list);
                }
            }
        }
    }

    fn seal(&mut self) {
        if let Some(list) = &mut self.list {
            list.seal();
        }
    }

    /// Values and counts in value order (from the map, or the merged runs).
    fn counts(&self) -> Box<dyn Iterator<Item = (T, u64)> + '_> {
        match &self.list {
            Some(list) => Box::new(list.counts()),
            None => {
                let mut runs: Vec<(T, u64)> = self.map.iter().map(|(&k, &c)| (k, c)).collect();
                runs.sort_unstable();
                Box::new(runs.into_iter())
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty() && self.list.is_none()
    }
}

/// Distinct values and the repeated ones, from one pass over the sorted counts.
#[derive(Default)]
struct Summary {
    distinct: u64,
    repeated: Vec<(Key, u64)>,
}

/// Counts of distinct non-null values, exact. Integers, floats and timestamps spill:
/// past 65,536 distinct values they go to a [`SortedSpill`] (one chunk in memory, sorted
/// runs in temporary files, merged when the counts are read), so a column of unique
/// ids or measurements validates in flat memory. Text values are counted in memory
/// (proportional to the distinct values; see docs/validate.md).
#[derive(Default)]
pub struct ValueCounts {
    ints: Spillable<i64>,
    /// Keys of [`float_order`].
    floats: Spillable<u64>,
    ts: Spillable<i64>,
    strings: FastMap<String, u64>,
    bools: [u64; 2],
    summary: std::cell::OnceCell<Summary>,
}

impl ValueCounts {
    /// Adds `count` occurrences of a text value.
    pub fn add_many(&mut self, s: &str, count: u64) {
        match self.strings.get_mut(s) {
            Some(c) => *c += count,
            None => {
                self.strings.insert(s.to_string(), count);
            }
        }
    }

    #[inline]
    pub fn add(&mut self, v: &Val<'_>) {
        match *v {
            Val::Null => {}
            Val::Int(i) => self.ints.add(i),
            Val::Float(f) => self
                .floats
                .add(float_order(if f == 0.0 { 0 } else { f.to_bits() })),
            Val::Str(s) => match self.strings.get_mut(s) {
                Some(c) => *c += 1,
                None => {
                    self.strings.insert(s.to_string(), 1);
                }
            },
            Val::Bool(b) => self.bools[usize::from(b)] += 1,
            Val::Ts(t) => self.ts.add(t),
        }
    }

    /// Sorts what is still in memory; call once all values are added and before
    /// reading the counts.
    pub fn seal(&mut self) {
        self.ints.seal();
        self.floats.seal();
        self.ts.seal();
        self.summary();
    }

    /// Every spilling kind's values as keys, each kind in value order.
    fn fixed_counts(&self) -> impl Iterator<Item = (Key, u64)> + '_ {
        let ints = self.ints.counts().map(|(k, c)| (Key::Int(k), c));
        let floats = self
            .floats
            .counts()
            .map(|(k, c)| (Key::Float(float_from_order(k)), c));
        let ts = self.ts.counts().map(|(k, c)| (Key::Ts(k), c));
        ints.chain(floats).chain(ts)
    }

    fn summary(&self) -> &Summary {
        self.summary.get_or_init(|| {
            let mut summary = Summary::default();
            let strings = self.strings.iter().map(|(k, &c)| (Key::Str(k.clone()), c));
            let bools = self
                .bools
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c > 0)
                .map(|(b, &c)| (Key::Bool(b == 1), c));
            for (key, count) in self.fixed_counts().chain(strings).chain(bools) {
                summary.distinct += 1;
                if count > 1 {
                    summary.repeated.push((key, count));
                }
            }
            summary.repeated.sort_by(|a, b| Key::cmp_values(&a.0, &b.0));
            summary
        })
    }

    /// Number of distinct non-null values.
    pub fn distinct(&self) -> u64 {
        self.summary().distinct
    }

    /// `(value, count)` for every distinct value, sorted by value. This one holds every
    /// distinct value (the distinct-set and most-common expectations list them, as
    /// GE's results do).
    pub fn sorted(&self) -> Vec<(Key, u64)> {
        let mut all: Vec<(Key, u64)> = Vec::with_capacity(self.distinct() as usize);
        all.extend(self.fixed_counts());
        all.extend(self.strings.iter().map(|(k, &c)| (Key::Str(k.clone()), c)));
        for (b, &c) in self.bools.iter().enumerate() {
            if c > 0 {
                all.push((Key::Bool(b == 1), c));
            }
        }
        all.sort_by(|a, b| Key::cmp_values(&a.0, &b.0));
        all
    }

    /// Values seen more than once, with their counts, sorted by value.
    pub fn repeated(&self) -> Vec<(Key, u64)> {
        self.summary().repeated.clone()
    }

    /// Numeric values in order with their counts (for exact quantiles), streamed from
    /// the spilled runs when the column holds only integers or only floats.
    pub fn numbers(&self) -> Box<dyn Iterator<Item = (f64, u64)> + '_> {
        let others = !self.strings.is_empty() || self.bools.iter().any(|&c| c > 0);
        if !others && self.ts.is_empty() && self.floats.is_empty() {
            return Box::new(self.ints.counts().map(|(k, c)| (k as f64, c)));
        }
        if !others && self.ts.is_empty() && self.ints.is_empty() {
            return Box::new(
                self.floats
                    .counts()
                    .map(|(k, c)| (f64::from_bits(float_from_order(k)), c)),
            );
        }
        let mut out: Vec<(f64, u64)> = self
            .sorted()
            .into_iter()
            .filter_map(|(k, c)| k.as_val().as_f64().map(|v| (v, c)))
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        Box::new(out.into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_timestamps_spill_and_count_exactly() {
        // Far more distinct values than the in-memory map holds, in a scrambled
        // order, negative and positive, with a few repeats.
        let n = (SPILL * 3) as i64;
        let scrambled = |i: i64| (i * 7919) % n - n / 2;
        let mut floats = ValueCounts::default();
        let mut times = ValueCounts::default();
        for i in 0..n {
            floats.add(&Val::Float(scrambled(i) as f64 * 0.25));
            times.add(&Val::Ts(scrambled(i) * 1_000));
        }
        floats.add(&Val::Float(-0.25));
        floats.add(&Val::Float(0.0));
        floats.add(&Val::Float(-0.0));
        times.add(&Val::Ts(0));
        assert!(
            floats.floats.list.is_some() && times.ts.list.is_some(),
            "spilled"
        );
        floats.seal();
        times.seal();
        assert_eq!(floats.distinct(), n as u64);
        assert_eq!(times.distinct(), n as u64);
        assert_eq!(
            floats.repeated(),
            vec![(Key::Float((-0.25f64).to_bits()), 2), (Key::Float(0), 3)]
        );
        assert_eq!(times.repeated(), vec![(Key::Ts(0), 2)]);
        // The numbers stream in order, each with its count.
        let numbers: Vec<(f64, u64)> = floats.numbers().collect();
        assert_eq!(numbers.len(), n as usize);
        assert!(numbers.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(numbers[0].0, -(n / 2) as f64 * 0.25);
        assert_eq!(numbers.iter().map(|&(_, c)| c).sum::<u64>(), n as u64 + 3);
    }

    #[test]
    fn float_order_keys_sort_like_the_numbers() {
        let values = [
            f64::NEG_INFINITY,
            -2.5,
            -1e-300,
            0.0,
            1e-300,
            3.0,
            f64::INFINITY,
        ];
        let keys: Vec<u64> = values.iter().map(|v| float_order(v.to_bits())).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for v in values {
            assert_eq!(
                f64::from_bits(float_from_order(float_order(v.to_bits()))),
                v
            );
        }
    }

    #[test]
    fn value_set_compares_numbers_across_int_and_float() {
        let set = ValueSet::new(&[Json::from(1), Json::from(2.5), Json::from("a")]);
        assert!(set.contains(&Val::Int(1)));
        assert!(set.contains(&Val::Float(1.0)));
        assert!(set.contains(&Val::Float(2.5)));
        assert!(set.contains(&Val::Str("a")));
        assert!(!set.contains(&Val::Str("1")));
    }
}
