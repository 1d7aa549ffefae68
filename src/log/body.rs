//! Bodies read from a log, bounded two ways: by size (the largest body a
//! request may have, raw or decoded, checked as it grows, so a decompression
//! bomb is refused the moment it passes the limit) and optionally by a
//! [`MemoryBudget`] shared with everything else that holds tiles in memory
//! (the WebSeed's cache). A buffer asks the budget before it grows, and the
//! bytes it ends as keep their share counted until the last reference to
//! them is dropped.

use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::MmapMut;

/// Memory shared by all tile bytes of a process.
pub trait MemoryBudget: Send + Sync {
    /// Takes `bytes` from the budget, or returns false if there is not enough left.
    fn try_take(&self, bytes: u64) -> bool;
    fn give_back(&self, bytes: u64);
}

/// What one body may cost.
#[derive(Clone)]
pub struct BodyLimit {
    /// The largest body, decoded; raw bodies may be a little larger (gzip framing).
    pub max: u64,
    pub memory: Option<Arc<dyn MemoryBudget>>,
}

impl BodyLimit {
    pub fn new(max: u64) -> BodyLimit {
        BodyLimit { max, memory: None }
    }

    pub fn within(max: u64, memory: Arc<dyn MemoryBudget>) -> BodyLimit {
        BodyLimit { max, memory: Some(memory) }
    }

    /// The largest raw (possibly gzip-encoded) body: gzip can make
    /// incompressible data a little larger, by its header and block framing.
    pub fn max_raw(&self) -> u64 {
        self.max.saturating_add(self.max / 64).saturating_add(1024)
    }
}

/// Why a body was refused.
#[derive(Debug)]
pub enum Overflow {
    /// Past the size limit.
    TooLarge,
    /// The memory budget is spent.
    OverBudget,
    Read(io::Error),
}

/// A body being read, within a size limit and a memory budget.
///
/// Under a budget its bytes go to an anonymous memory mapping of the largest
/// size allowed: only the pages written take memory, it never moves as it
/// grows, and it goes back to the system the moment the buffer is dropped. A
/// heap buffer would do none of that: the C allocator keeps what concurrent
/// fetches freed in per-thread arenas, so the process would grow past the
/// budget even though the bytes alive never did. Without a budget (a build,
/// whose tiles in flight are bounded by its window) a heap buffer is the
/// faster choice: a fresh mapping per tile costs a page fault per 4 KiB and
/// an `munmap` per tile, which tripled a build's system time.
pub struct BodyBuffer {
    data: Storage,
    len: usize,
    max: u64,
    memory: Option<Arc<dyn MemoryBudget>>,
    /// Bytes taken from the budget, ahead of `len`.
    taken: u64,
}

/// Where a buffer's bytes are.
enum Storage {
    /// No budget: the heap; its length is the buffer's.
    Heap(Vec<u8>),
    /// Under a budget: a mapping of the largest size allowed, made on first use.
    Mapped(Option<MmapMut>),
}

/// How much a buffer's budget grows at least, so that it is not asked per read.
const GROWTH: u64 = 64 << 10;

impl BodyBuffer {
    /// An empty buffer for at most `max` bytes, charged to `limit`'s budget.
    pub fn new(max: u64, limit: &BodyLimit) -> BodyBuffer {
        let data = match limit.memory {
            Some(_) => Storage::Mapped(None),
            None => Storage::Heap(Vec::new()),
        };
        BodyBuffer { data, len: 0, max, memory: limit.memory.clone(), taken: 0 }
    }

    /// Takes budget for `expected` bytes up front (a known length), within the limits.
    pub fn reserve_for(&mut self, expected: u64) -> Result<(), Overflow> {
        let expected = expected.min(self.max);
        if let Storage::Heap(data) = &mut self.data {
            data.reserve_exact((expected as usize).saturating_sub(data.len()));
        }
        self.take_to(expected)
    }

    /// Appends everything `reader` yields.
    pub fn read_from(&mut self, reader: &mut dyn Read) -> Result<(), Overflow> {
        if let Storage::Heap(data) = &mut self.data {
            // The standard library's loop: it fills what `reserve_for` reserved,
            // and probes before growing a buffer that is exactly full.
            let room = self.max - self.len as u64;
            let read = reader.take(room + 1).read_to_end(data);
            self.len = data.len();
            read.map_err(Overflow::Read)?;
            if self.len as u64 > self.max {
                data.truncate(self.max as usize);
                self.len = data.len();
                return Err(Overflow::TooLarge);
            }
            return Ok(());
        }
        loop {
            if self.len as u64 == self.max {
                // Full: one more byte would be too many.
                let mut probe = [0u8; 1];
                return match reader.read(&mut probe) {
                    Ok(0) => Ok(()),
                    Ok(_) => Err(Overflow::TooLarge),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => Err(Overflow::Read(error)),
                };
            }
            let end = (self.len as u64 + CHUNK).min(self.max);
            self.take_to(end)?;
            let len = self.len;
            let data = self.mapping()?;
            match reader.read(&mut data[len..end as usize]) {
                Ok(0) => return Ok(()),
                Ok(n) => self.len += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(Overflow::Read(error)),
            }
        }
    }

    /// The mapping, made on first use.
    fn mapping(&mut self) -> Result<&mut MmapMut, Overflow> {
        let Storage::Mapped(mapping) = &mut self.data else {
            unreachable!("only a buffer under a budget is mapped");
        };
        if mapping.is_none() {
            let len = usize::try_from(self.max).map_err(|_| Overflow::TooLarge)?;
            *mapping = Some(MmapMut::map_anon(len).map_err(Overflow::Read)?);
        }
        mapping.as_mut().ok_or(Overflow::TooLarge)
    }

    /// Makes sure the budget covers `end` bytes.
    fn take_to(&mut self, end: u64) -> Result<(), Overflow> {
        if end <= self.taken {
            return Ok(());
        }
        let target = end.max(self.taken + GROWTH).min(self.max);
        if let Some(memory) = &self.memory
            && !memory.try_take(target - self.taken)
        {
            return Err(Overflow::OverBudget);
        }
        self.taken = target;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        match &self.data {
            Storage::Heap(data) => data,
            Storage::Mapped(mapping) => mapping.as_ref().map_or(&[], |data| &data[..self.len]),
        }
    }

    /// The bytes, whose share of the budget is given back when the last
    /// `Bytes` pointing into them goes: a heap buffer's as they are; a
    /// mapping's of [`KEEP_MAPPED`] bytes or more left in the mapping (no
    /// copy), which goes back to the system the moment they are dropped;
    /// smaller ones copied into a heap allocation of exactly their length.
    ///
    /// A large tile copied to the heap would be freed into the C
    /// allocator's arenas when the cache drops it, and the arenas keep what
    /// they were given, cut into holes by tiles of other sizes: under a
    /// random load over more tiles than the cache holds, that grew a server
    /// some 50 MiB past the tile bytes alive.
    pub fn into_bytes(mut self) -> Bytes {
        let Storage::Mapped(mapping) = &mut self.data else {
            let Storage::Heap(data) = &mut self.data else { return Bytes::new() };
            return Bytes::from(std::mem::take(data));
        };
        let len = self.len;
        let Some(memory) = self.memory.take() else {
            return Bytes::copy_from_slice(self.as_slice());
        };
        if len as u64 >= KEEP_MAPPED
            && let Some(map) = mapping.take()
        {
            memory.give_back(self.taken - len as u64);
            self.taken = 0;
            return Bytes::from_owner(Counted { data: Data::Mapped { map, len }, memory });
        }
        let data: Box<[u8]> = self.as_slice().into();
        self.data = Storage::Mapped(None);
        memory.give_back(self.taken - data.len() as u64);
        self.taken = 0;
        Bytes::from_owner(Counted { data: Data::Heap(data), memory })
    }
}

/// Bodies at least this large stay in their own mapping when read whole
/// (data tiles); smaller ones (hash tiles, 8 KiB) go to the heap, where
/// they do not fragment it, and so that a cache full of them does not need
/// a mapping each.
pub const KEEP_MAPPED: u64 = 64 << 10;

/// Bytes read per call.
const CHUNK: u64 = 64 << 10;

impl Drop for BodyBuffer {
    fn drop(&mut self) {
        if let Some(memory) = &self.memory {
            memory.give_back(self.taken);
        }
    }
}

/// Bytes whose length stays charged to a budget while they live.
struct Counted {
    data: Data,
    memory: Arc<dyn MemoryBudget>,
}

/// Where counted bytes live.
enum Data {
    Heap(Box<[u8]>),
    /// The first `len` bytes of a mapping.
    Mapped {
        map: MmapMut,
        len: usize,
    },
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        match &self.data {
            Data::Heap(data) => data,
            Data::Mapped { map, len } => &map[..*len],
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.memory.give_back(self.as_ref().len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Pool {
        used: AtomicU64,
        limit: u64,
    }

    impl MemoryBudget for Pool {
        fn try_take(&self, bytes: u64) -> bool {
            self.used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                    (used + bytes <= self.limit).then_some(used + bytes)
                })
                .is_ok()
        }

        fn give_back(&self, bytes: u64) {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    fn pool(limit: u64) -> Arc<Pool> {
        Arc::new(Pool { used: AtomicU64::new(0), limit })
    }

    #[test]
    fn bytes_stay_counted_until_dropped() {
        let memory = pool(1 << 20);
        let limit = BodyLimit::within(1 << 20, memory.clone());
        let mut buffer = BodyBuffer::new(limit.max, &limit);
        buffer.read_from(&mut &[7u8; 100_000][..]).unwrap();
        assert!(memory.used.load(Ordering::Relaxed) >= 100_000);
        let bytes = buffer.into_bytes();
        assert_eq!(memory.used.load(Ordering::Relaxed), 100_000, "the spare capacity is given back");
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(memory.used.load(Ordering::Relaxed), 100_000, "a slice keeps the whole alive");
        drop(slice);
        assert_eq!(memory.used.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_large_body_stays_in_its_mapping_charged_until_its_last_slice_goes() {
        let memory = pool(8 << 20);
        let limit = BodyLimit::within(8 << 20, memory.clone());
        let content: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
        let mut buffer = BodyBuffer::new(limit.max, &limit);
        buffer.read_from(&mut &content[..]).unwrap();
        let mapped = buffer.as_slice().as_ptr();
        let bytes = buffer.into_bytes();
        assert_eq!(bytes, content);
        assert_eq!(bytes.as_ptr(), mapped, "not copied to the heap, whose arenas would keep it");
        assert_eq!(memory.used.load(Ordering::Relaxed), 400_000, "exactly its length is charged");
        // A response still being sent after the cache let go: still charged.
        let in_flight = bytes.slice(262_144..);
        drop(bytes);
        assert_eq!(memory.used.load(Ordering::Relaxed), 400_000);
        drop(in_flight);
        assert_eq!(memory.used.load(Ordering::Relaxed), 0);

        // A hash tile's 8 KiB go to the heap: no mapping per small tile.
        let mut small = BodyBuffer::new(limit.max, &limit);
        small.read_from(&mut &[3u8; 8192][..]).unwrap();
        let mapped = small.as_slice().as_ptr();
        let bytes = small.into_bytes();
        assert_ne!(bytes.as_ptr(), mapped);
        assert_eq!(memory.used.load(Ordering::Relaxed), 8192);
        drop(bytes);
        assert_eq!(memory.used.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn without_a_budget_bytes_live_on_the_heap_within_the_size_limit() {
        let limit = BodyLimit::new(150_000);
        let content: Vec<u8> = (0..140_000u32).map(|i| i as u8).collect();
        let mut buffer = BodyBuffer::new(limit.max, &limit);
        buffer.reserve_for(20_000).unwrap();
        // A reader handing out a few bytes at a time, as a socket does.
        buffer.read_from(&mut io::Read::chain(&content[..1000], &content[1000..])).unwrap();
        assert_eq!(buffer.as_slice(), &content[..]);
        assert_eq!(buffer.into_bytes(), content);

        let mut endless = BodyBuffer::new(limit.max, &limit);
        assert!(matches!(endless.read_from(&mut io::repeat(0)), Err(Overflow::TooLarge)));
        assert!(endless.len() <= 150_000);
    }

    #[test]
    fn size_and_budget_limits_refuse_as_soon_as_they_are_passed() {
        let memory = pool(200_000);
        let limit = BodyLimit::within(150_000, memory.clone());
        let mut endless = io::repeat(0);
        let mut buffer = BodyBuffer::new(limit.max, &limit);
        assert!(matches!(buffer.read_from(&mut endless), Err(Overflow::TooLarge)));
        assert!(buffer.len() <= 150_000);
        drop(buffer);
        assert_eq!(memory.used.load(Ordering::Relaxed), 0, "a refused buffer gives everything back");

        let first = BodyBuffer::new(limit.max, &limit);
        let mut first = first;
        first.read_from(&mut &[1u8; 140_000][..]).unwrap();
        let mut second = BodyBuffer::new(limit.max, &limit);
        assert!(matches!(second.read_from(&mut &[1u8; 140_000][..]), Err(Overflow::OverBudget)));
        drop(first);
        let mut third = BodyBuffer::new(limit.max, &limit);
        third.read_from(&mut &[1u8; 140_000][..]).unwrap();
        assert_eq!(third.into_bytes().len(), 140_000);
    }
}
