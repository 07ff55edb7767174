//! The allocator's part in keeping a conversion's memory bounded (glibc on Linux; nothing
//! elsewhere). glibc keeps the memory it frees in its heaps, and raises the size from which it
//! maps a block of its own (given back when freed) each time such a block is freed: a
//! conversion worked part by part would then keep each part's large blocks in its heaps,
//! where the next part's, of other sizes, do not all fit, and its peak would creep up part
//! after part, growing with the export after all.

/// Blocks from this size up are mapped on their own and given back to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAPPED_FROM: std::ffi::c_int = 128 << 10;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    fn malloc_trim(pad: usize) -> std::ffi::c_int;
}

/// glibc's `M_MMAP_THRESHOLD` (`malloc.h`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_MMAP_THRESHOLD: std::ffi::c_int = -3;

/// Large blocks are given back to the system when freed, from now on (for the whole process:
/// the threshold is fixed instead of rising as glibc's does by default).
pub(super) fn give_back_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` sets a parameter of glibc's allocator; it takes no pointer.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, MAPPED_FROM);
    }
}

/// Gives the free pages of the allocator's heaps back to the system (after a part's work).
pub(super) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` returns free pages of glibc's heaps to the system; it touches no
    // memory in use and takes no pointer.
    unsafe {
        malloc_trim(0);
    }
}
