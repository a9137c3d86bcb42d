//! The broker's global allocator: the workspace's allocator (`shared::allocator`), except that
//! very large allocations are mapped with `MAP_NORESERVE`.
//!
//! Why: the `kafka-protocol` decoder sizes a `Vec` from an array count read off the wire before
//! checking that the frame holds that many elements (its `Array::decode` calls
//! `Vec::with_capacity(n)`; upstream fixes are still open). A 17-byte request declaring 2^31
//! elements asks for hundreds of GiB; the allocator refuses, and Rust aborts the process
//! on a failed allocation: one frame would take the broker down. With `MAP_NORESERVE` the kernel
//! hands out the address range without committing memory, the decoder fails on the next read
//! (the bytes are not there), and the untouched range is unmapped. Memory that is actually written
//! is still real memory, so legitimate large buffers behave as before. Found by the
//! `decode_request` fuzz target.
//!
//! Invariant: an allocation is served by `mmap` exactly when its size is at least [`HUGE`] and
//! its alignment at most a page, and `dealloc`/`realloc` decide by the same rule from the layout,
//! so every block is released by the allocator that made it.

use std::alloc::{GlobalAlloc, Layout};

use shared::allocator::ALLOCATOR as SMALL;

/// Allocations from this size on are mapped rather than malloc'ed.
pub const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

#[derive(Debug, Default, Clone, Copy)]
pub struct NoReserveHugeAlloc;

fn mapped(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

// SAFETY (whole impl): small blocks go to the workspace allocator unchanged. Huge blocks come
// from an anonymous private mapping, which is page aligned (>= the layout's alignment, checked by
// `mapped`), zeroed, and exclusively owned until `munmap` in `dealloc`, which receives the same
// size (Rust passes the allocation's layout back to `dealloc`).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for NoReserveHugeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !mapped(&layout) {
            return unsafe { SMALL.alloc(layout) };
        }
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            // Fresh anonymous mappings are zero-filled.
            unsafe { self.alloc(layout) }
        } else {
            unsafe { SMALL.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(&layout) {
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { SMALL.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        if !mapped(&layout) && !mapped(&new_layout) {
            return unsafe { SMALL.realloc(ptr, layout, new_size) };
        }
        // Crossing the threshold (or resizing a mapping): allocate, copy, free.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_untouched_allocations_succeed_and_small_ones_round_trip() {
        let a = NoReserveHugeAlloc;
        // Far more than this machine's memory: only address space, never touched.
        let huge = Layout::from_size_align(256 << 30, 8).unwrap();
        #[allow(unsafe_code)]
        unsafe {
            let p = a.alloc(huge);
            assert!(!p.is_null());
            *p = 7; // one page becomes real
            assert_eq!(*p, 7);
            a.dealloc(p, huge);

            let small = Layout::from_size_align(64, 8).unwrap();
            let p = a.alloc_zeroed(small);
            assert_eq!(*p.add(63), 0);
            let p = a.realloc(p, small, HUGE + 1);
            assert!(!p.is_null());
            let grown = Layout::from_size_align(HUGE + 1, 8).unwrap();
            let p = a.realloc(p, grown, 128);
            a.dealloc(p, Layout::from_size_align(128, 8).unwrap());
        }
    }
}
