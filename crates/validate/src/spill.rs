//! An exact multiset of fixed-size values with memory bounded by a chunk, not by rows.
//!
//! Uniqueness over a key column (or a tuple of columns) needs every value until the
//! end: a hash map of millions of mostly-distinct keys is the largest thing a
//! validation holds. [`SortedSpill`] keeps a buffer instead; when it fills, the buffer
//! is sorted and written to an anonymous temporary file as a run, and the runs are
//! merged at the end into `(value, count)` in value order. Memory stays at one chunk
//! plus a small read buffer per run however many rows there are. If no temporary file
//! can be made, the values stay in memory (correct, only bigger) and a warning says so.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};

/// Values that spill as fixed-size little-endian words.
pub trait Word: Copy + Ord {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn take(bytes: &[u8]) -> Self;
}

impl Word for i64 {
    const SIZE: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn take(bytes: &[u8]) -> Self {
        i64::from_le_bytes(bytes[..8].try_into().unwrap_or_default())
    }
}

impl Word for u64 {
    const SIZE: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn take(bytes: &[u8]) -> Self {
        u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default())
    }
}

impl Word for u128 {
    const SIZE: usize = 16;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn take(bytes: &[u8]) -> Self {
        u128::from_le_bytes(bytes[..16].try_into().unwrap_or_default())
    }
}

/// Values per run: 4 MiB of `i64`, 8 MiB of `u128`.
pub const CHUNK: usize = 1 << 19;
/// Bytes read from a run at a time during the merge.
const READ_BYTES: usize = 1 << 16;

/// A multiset of values, sorted in runs on disk once it outgrows one chunk.
pub struct SortedSpill<T: Word> {
    buffer: Vec<T>,
    runs: Vec<(File, u64)>,
    chunk: usize,
    /// Set once spilling failed: everything stays in `buffer`.
    in_memory: bool,
}

impl<T: Word> Default for SortedSpill<T> {
    fn default() -> Self {
        SortedSpill::with_chunk(CHUNK)
    }
}

impl<T: Word> SortedSpill<T> {
    pub fn with_chunk(chunk: usize) -> Self {
        SortedSpill {
            buffer: Vec::new(),
            runs: Vec::new(),
            chunk: chunk.max(1),
            in_memory: false,
        }
    }

    #[inline]
    pub fn push(&mut self, value: T) {
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(self.chunk);
        }
        self.buffer.push(value);
        if self.buffer.len() >= self.chunk && !self.in_memory {
            self.spill();
        }
    }

    pub fn extend(&mut self, values: impl IntoIterator<Item = T>) {
        for v in values {
            self.push(v);
        }
    }

    fn spill(&mut self) {
        self.buffer.sort_unstable();
        match write_run(&self.buffer) {
            Ok(run) => {
                self.runs.push(run);
                self.buffer.clear();
            }
            Err(e) => {
                tracing::warn!(
                    "cannot write a temporary file ({e}); keeping uniqueness keys in memory"
                );
                self.in_memory = true;
            }
        }
    }

    /// Sorts what is still in memory; call once before [`SortedSpill::counts`].
    pub fn seal(&mut self) {
        self.buffer.sort_unstable();
    }

    /// Every distinct value with its count, in value order (after [`SortedSpill::seal`]).
    /// Each call reads the runs again from their start.
    pub fn counts(&self) -> Counts<'_, T> {
        let mut sources: Vec<Source<'_, T>> = self
            .runs
            .iter()
            .map(|(file, bytes)| Source::Run(RunReader::new(file, *bytes)))
            .collect();
        sources.push(Source::Memory(self.buffer.iter()));
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some(v) = s.next() {
                heap.push(Reverse((v, i)));
            }
        }
        Counts { sources, heap }
    }
}

fn write_run<T: Word>(sorted: &[T]) -> std::io::Result<(File, u64)> {
    let mut file = tempfile::tempfile()?;
    let mut out = BufWriter::with_capacity(READ_BYTES, &mut file);
    let mut bytes = Vec::with_capacity(READ_BYTES);
    for chunk in sorted.chunks(READ_BYTES / T::SIZE) {
        bytes.clear();
        for &v in chunk {
            v.put(&mut bytes);
        }
        out.write_all(&bytes)?;
    }
    out.flush()?;
    drop(out);
    Ok((file, (sorted.len() * T::SIZE) as u64))
}

/// Reads one run back in blocks, positioned explicitly so that several passes work.
struct RunReader<'a> {
    file: &'a File,
    offset: u64,
    end: u64,
    block: Vec<u8>,
    pos: usize,
}

impl<'a> RunReader<'a> {
    fn new(file: &'a File, end: u64) -> Self {
        RunReader {
            file,
            offset: 0,
            end,
            block: Vec::new(),
            pos: 0,
        }
    }

    fn next<T: Word>(&mut self) -> Option<T> {
        if self.pos + T::SIZE > self.block.len() {
            if self.offset >= self.end {
                return None;
            }
            let want = (self.end - self.offset).min((READ_BYTES / T::SIZE * T::SIZE) as u64);
            self.block.resize(want as usize, 0);
            let mut file = self.file;
            let read = file
                .seek(SeekFrom::Start(self.offset))
                .and_then(|_| file.read_exact(&mut self.block));
            if let Err(e) = read {
                // The file is ours and was just written; a failure here is the disk's.
                tracing::error!("cannot read back a temporary file: {e}");
                self.offset = self.end;
                self.block.clear();
                return None;
            }
            self.offset += want;
            self.pos = 0;
        }
        let v = T::take(&self.block[self.pos..self.pos + T::SIZE]);
        self.pos += T::SIZE;
        Some(v)
    }
}

enum Source<'a, T: Word> {
    Run(RunReader<'a>),
    Memory(std::slice::Iter<'a, T>),
}

impl<T: Word> Source<'_, T> {
    fn next(&mut self) -> Option<T> {
        match self {
            Source::Run(r) => r.next(),
            Source::Memory(m) => m.next().copied(),
        }
    }
}

/// The merge of a [`SortedSpill`]'s runs: `(value, count)` in value order.
pub struct Counts<'a, T: Word> {
    sources: Vec<Source<'a, T>>,
    heap: BinaryHeap<Reverse<(T, usize)>>,
}

impl<T: Word> Iterator for Counts<'_, T> {
    type Item = (T, u64);

    fn next(&mut self) -> Option<(T, u64)> {
        let Reverse((value, _)) = *self.heap.peek()?;
        let mut count = 0;
        while let Some(&Reverse((v, i))) = self.heap.peek() {
            if v != value {
                break;
            }
            self.heap.pop();
            count += 1;
            // Equal values of one source are adjacent: take them without the heap.
            let mut next = self.sources[i].next();
            while next == Some(value) {
                count += 1;
                next = self.sources[i].next();
            }
            if let Some(n) = next {
                self.heap.push(Reverse((n, i)));
            }
        }
        Some((value, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(values: &[i64]) -> Vec<(i64, u64)> {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let mut out: Vec<(i64, u64)> = Vec::new();
        for v in sorted {
            match out.last_mut() {
                Some((k, c)) if *k == v => *c += 1,
                _ => out.push((v, 1)),
            }
        }
        out
    }

    #[test]
    fn merges_runs_exactly_with_repeats_across_runs() {
        // A pseudo-random sequence with repeats, spread over many small runs.
        let values: Vec<i64> = (0..10_000u64)
            .map(|i| ((i.wrapping_mul(2_654_435_761)) % 3_001) as i64 - 1_500)
            .collect();
        let mut spill = SortedSpill::with_chunk(97);
        spill.extend(values.iter().copied());
        assert!(
            spill.runs.len() > 50,
            "the test must spill: {}",
            spill.runs.len()
        );
        spill.seal();
        let merged: Vec<(i64, u64)> = spill.counts().collect();
        assert_eq!(merged, reference(&values));
        // A second pass reads the runs again from their start.
        assert_eq!(spill.counts().count(), merged.len());
    }

    #[test]
    fn wide_words_and_the_in_memory_case() {
        let mut spill: SortedSpill<u128> = SortedSpill::with_chunk(1_000);
        for v in [5u128 << 100, 3, 5u128 << 100, 1] {
            spill.push(v);
        }
        assert!(spill.runs.is_empty());
        spill.seal();
        let merged: Vec<(u128, u64)> = spill.counts().collect();
        assert_eq!(merged, vec![(1, 1), (3, 1), (5u128 << 100, 2)]);
        let empty: SortedSpill<i64> = SortedSpill::default();
        assert_eq!(empty.counts().count(), 0);
    }
}
