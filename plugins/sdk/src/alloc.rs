//! The allocator every plugin built with the SDK uses on wasm32: free lists by size class over
//! memory taken from the system allocator in chunks of 8 KiB, then 16, 32 and 64 KiB.
//!
//! A hook call allocates and frees a few dozen small blocks (the head's strings, the verdict's
//! edits, formatted values). wasi-libc's dlmalloc, the default, spent about 200 instructions
//! on each malloc and free in the gateway's profile (a third of the plugins' own work on the
//! auth + ratelimit path); a size class pops and pushes a free list in a handful. Blocks are
//! 16 bytes to 32 KiB in powers of two, 16-byte aligned; larger or more strictly aligned
//! requests go to the system allocator. Freed small blocks are kept for reuse by their class,
//! never returned: an instance's memory only grows anyway, and the host replaces an instance
//! whose memory grew past its recycle threshold.
//!
//! A component instance runs one thread, so the state needs no lock; [`SizeClasses`] is `Sync`
//! only so that it can be a `static` (the SDK installs it as the global allocator on wasm32
//! unless the plugin enables the SDK feature `system-allocator`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// The smallest block: 16 bytes (room for the free list's link, and the alignment).
const MIN_SHIFT: u32 = 4;
/// Size classes: 16 B, 32 B, … 32 KiB.
const CLASSES: usize = 12;
/// The largest block a class serves.
const MAX_SMALL: usize = 1 << (MIN_SHIFT as usize + CLASSES - 1);
/// The alignment every block has.
const ALIGN: usize = 1 << MIN_SHIFT;
/// What the first refill takes from the system allocator. Small, so that an instance whose
/// calls allocate little never grows its memory for the allocator: a fresh instance (one per
/// call) would pay for new pages on every call.
const FIRST_CHUNK: usize = 8 << 10;
/// The most one refill takes: each refill doubles the last one's size, up to this.
const CHUNK: usize = 64 << 10;

struct State {
    /// The first free block of each class; each free block holds the next one's address.
    free: [*mut u8; CLASSES],
    /// The unused rest of the current chunk.
    next: *mut u8,
    end: *mut u8,
    /// The size of the next refill.
    chunk: usize,
}

/// Free lists by size class; see the module documentation.
pub struct SizeClasses(UnsafeCell<State>);

// SAFETY: a wasm32-wasip2 component instance runs a single thread, the only place the SDK
// installs this allocator; `Sync` is what a `static` global allocator needs.
unsafe impl Sync for SizeClasses {}

impl Default for SizeClasses {
    fn default() -> Self {
        Self::new()
    }
}

impl SizeClasses {
    /// An allocator with empty free lists.
    pub const fn new() -> Self {
        SizeClasses(UnsafeCell::new(State {
            free: [ptr::null_mut(); CLASSES],
            next: ptr::null_mut(),
            end: ptr::null_mut(),
            chunk: FIRST_CHUNK,
        }))
    }
}

/// The class of a small `layout`, or `None` when the system allocator serves it.
fn class(layout: Layout) -> Option<usize> {
    if layout.size() > MAX_SMALL || layout.align() > ALIGN {
        return None;
    }
    let size = layout.size().max(ALIGN);
    Some((usize::BITS - (size - 1).leading_zeros() - MIN_SHIFT) as usize)
}

impl State {
    /// A block of class `c`: from its free list, else from the chunk, else from a new chunk.
    unsafe fn take(&mut self, c: usize) -> *mut u8 {
        let head = self.free[c];
        if !head.is_null() {
            // SAFETY: a free block holds the address of the next one (or null).
            self.free[c] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = ALIGN << c;
        if (self.end as usize) - (self.next as usize) < size {
            // A block larger than the next refill gets a chunk of its own size.
            let length = self.chunk.max(size);
            // SAFETY: `length` (at most 64 KiB) and ALIGN make a valid, non-zero layout.
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(length, ALIGN)) };
            if chunk.is_null() {
                return chunk;
            }
            self.next = chunk;
            self.end = chunk.wrapping_add(length);
            self.chunk = (self.chunk * 2).min(CHUNK);
        }
        let block = self.next;
        self.next = block.wrapping_add(size);
        block
    }

    /// Puts block `p` of class `c` on its free list.
    unsafe fn give(&mut self, p: *mut u8, c: usize) {
        // SAFETY: `p` is a block of at least 16 bytes, 16-byte aligned, no longer in use.
        unsafe { p.cast::<*mut u8>().write(self.free[c]) };
        self.free[c] = p;
    }
}

// SAFETY: blocks of one class never overlap (each is carved once from a chunk and only
// recycled after `dealloc`), are at least as large as asked and 16-byte aligned; everything
// else is the system allocator's.
unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout) {
            // SAFETY: single-threaded (see `Sync` above): no other borrow of the state exists.
            Some(c) => unsafe { (*self.0.get()).take(c) },
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match class(layout) {
            Some(c) => unsafe { (*self.0.get()).give(p, c) },
            None => unsafe { System.dealloc(p, layout) },
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            (Some(old), Some(new)) if old == new => p,
            (None, None) => unsafe { System.realloc(p, layout, new_size) },
            _ => {
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(p, moved, layout.size().min(new_size));
                        self.dealloc(p, layout);
                    }
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests;
