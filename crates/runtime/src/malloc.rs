//! Bounds on glibc's malloc caches, so that a step's resident memory follows its data
//! and not how long it runs.
//!
//! Two glibc defaults make a long run's resident memory creep up while its live heap
//! stays put:
//! - threads get their own arenas, up to eight per core, and an arena keeps what its
//!   thread freed; a step's threads come and go (tokio's blocking pool, the CSV parser,
//!   the store's file writes), so a long run touches more and more of them;
//! - the first large block (an upload part, a column chunk) freed raises the threshold
//!   above which blocks are mapped on their own, so later large blocks come from the
//!   arenas and leave holes there when freed.
//!
//! prepare on 32 M rows peaked at 79–94 MiB with the defaults and at 55–63 MiB with one
//! arena per core and a fixed 128 KiB threshold, its live heap being about 40 MiB
//! (docs/benchmarks.md). `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` in the
//! environment still win: each is left alone when set.

/// Blocks of this size or more are mapped on their own and returned when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Caps the arenas at the number of cores this process may use (at least two) and
/// fixes the mmap threshold. Must run before the process starts threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn bound_caches() {
    let unset = |name: &str| std::env::var_os(name).is_none();
    if unset("MALLOC_ARENA_MAX") {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        set(
            libc::M_ARENA_MAX,
            libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX),
        );
    }
    if unset("MALLOC_MMAP_THRESHOLD_") {
        set(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set(parameter: libc::c_int, value: libc::c_int) {
    // SAFETY: mallopt only changes allocator parameters (it takes glibc's own locks),
    // and here no other thread of ours exists yet. A refusal (0) keeps the default.
    #[allow(unsafe_code)]
    let _ = unsafe { libc::mallopt(parameter, value) };
}

/// Other allocators bound their own caches.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn bound_caches() {}
