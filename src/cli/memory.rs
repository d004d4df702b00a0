//! How the binary asks glibc's malloc to behave.
//!
//! An export allocates and frees a few buffers of 256 KiB to 4 MiB for every page and row group
//! (response bodies, decoded columns, Parquet column chunks, upload parts) from several threads.
//! With glibc's defaults each thread may get its own arena, and the mmap threshold rises to
//! the largest block freed so far, so those buffers end up spread over arenas that keep the
//! memory: peak RSS grew from 117–123 MiB at 1M contacts to 138–154 MiB at 5M while the heap
//! in use stayed under 80 MiB (BENCHMARKS.md, "Issue 12: memory"). One arena and a fixed 1 MiB
//! threshold (large blocks go straight back to the system) measured 100–112 MiB at 1M and
//! 109–117 MiB at 5M, at the same CPU time within the noise.
//!
//! Set `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` in the environment to choose otherwise
//! (on machines with many cores, more arenas may suit the decoders better); each one that is
//! set is left alone. Other C libraries and platforms are not touched.

/// Applies the settings above, unless the environment chose its own.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::tune();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod glibc {
    /// Arenas: one, shared by every thread.
    const ARENAS: libc::c_int = 1;
    /// Blocks from 1 MiB up are mapped and unmapped one by one.
    const MMAP_THRESHOLD: libc::c_int = 1 << 20;

    pub(super) fn tune() {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: `mallopt` only changes malloc's tuning parameters, takes no pointers,
            // and is called before the runtime starts any thread.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        }
    }
}
