//! The allocator setting the benches share with the `fusebox` CLI (see `cli/src/main.rs`).
//!
//! mimalloc returns freed memory to the OS 10 ms after it is freed by default. A live
//! engine frees a batch's buffers every few milliseconds and allocates the next batch's
//! right after, so with the default most batches start on fresh pages the kernel must zero
//! (with transparent huge pages, 2 MiB at a time): a quarter of the engine thread's samples
//! in `clear_page_erms` in the live bench's open loop. A one-second delay keeps them.

/// `mi_option_purge_delay` in mimalloc's option enum (the same index in its v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the process, ms (the CLI's setting).
const PURGE_DELAY_MS: std::os::raw::c_long = 1000;

/// Sets mimalloc's purge delay to the CLI's; call first in `main`, before any thread starts.
pub fn keep_freed_memory() {
    // SAFETY: sets a process-wide allocator option before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}
