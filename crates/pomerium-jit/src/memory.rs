//! Gives the allocator's free memory back to the kernel while serving.
//!
//! glibc's malloc hands freed memory back only from the top of each heap.
//! What start-up frees below memory still in use stays resident for the
//! life of the process: clap's command tree, the OpenAPI document's tree
//! (only its JSON is kept), SQLite's statement preparation, aws-lc's
//! entropy pool, each thread's arena. Measured on the idle service: 0.7 MB
//! of its 9.6 MB. `malloc_trim(0)` returns every free whole page of every
//! arena (`MADV_DONTNEED`); it runs once start-up has settled, then every
//! [`EVERY`], so what a burst of load freed goes back too. It locks one
//! arena at a time for its walk.
//!
//! Before that, [`keep_large_blocks_apart`] fixes malloc's mmap threshold, so
//! large blocks are mapped on their own and unmapped when freed, and
//! [`runtime`] gives each of the runtime's workers an arena of its own.
//!
//! Other C libraries (musl) have no such calls, and this does nothing there.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// From serving to the first trim: by then start-up's garbage (the router's
/// build, the first sync of each policy, the first pages) is freed.
const SETTLE: Duration = Duration::from_secs(1);
/// Between trims afterwards.
const EVERY: Duration = Duration::from_secs(30);

/// Blocks of this size and more are mapped on their own: a policy document
/// and the bodies that carry it (830 KB at 5,000 grants). A page of the
/// approvers' list (170 KB at thousands of people) stays below it: mapped
/// afresh for each page, its faults cost 45–130% more CPU time per page
/// (the load test, with the threshold at 128 KiB).
const MMAP_THRESHOLD: usize = 256 * 1024;

/// Keeps large blocks out of the arenas. glibc maps blocks from 128 KiB on
/// its own, but raises that threshold to the size of each mapped block freed
/// (up to 32 MiB), so after the first sync of a large policy every document
/// is carved from the arenas, and what they free between blocks
/// still in use stays resident until the next trim. A threshold set once
/// stays put. Call it before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn keep_large_blocks_apart() {
    let threshold = libc::c_int::try_from(MMAP_THRESHOLD).expect("a small constant");
    // SAFETY: mallopt takes two integers and no pointers; glibc takes the
    // main arena's lock to change the setting (glibc's malloc/malloc.c).
    // It returns 0 only for an unknown parameter or a value out of range.
    let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
    debug_assert_eq!(set, 1, "glibc refused the mmap threshold");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_large_blocks_apart() {}

/// The async runtime with `workers` threads, each with a malloc arena of
/// its own. Build it before any other thread starts.
///
/// glibc gives a thread its arena at its first allocation: a new one while
/// there are fewer than `M_ARENA_MAX`, else an existing one, the first whose
/// lock is free at that moment. With two arenas for two workers (what the
/// deployments used to set), which thread got which was a race that the
/// workers lost in about half the starts: they shared one arena, and every
/// block past the per-thread cache (1 KiB: hyper's read buffer, a
/// response's header map) took a lock the other worker could hold.
/// Measured under `GET /` at c64 on held services: 90,000 against 107,000
/// requests a second, 0.31 against 0.13 preemptions per request, 17,000
/// waits on malloc's lock in 2 s. So one arena more than there are workers
/// is allowed, and the workers, started before any other thread, each make
/// their own; threads started later (the log writer, SQLite's connections)
/// share the arenas there are.
///
/// Overrides `glibc.malloc.arena_max` in `GLIBC_TUNABLES`.
pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    allow_arenas(workers.saturating_add(1));
    let started = std::sync::Arc::new(Started::default());
    let arrived = std::sync::Arc::clone(&started);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .on_thread_start(move || arrived.arrived())
        .enable_all()
        .build()?;
    // Tokio starts its workers as it builds; the wait is only a bound.
    started.wait_for(workers, Duration::from_secs(5));
    Ok(runtime)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn allow_arenas(arenas: usize) {
    let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
    // SAFETY: as in keep_large_blocks_apart: two integers, no pointers.
    let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    debug_assert_eq!(set, 1, "glibc refused the arena count");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn allow_arenas(_arenas: usize) {}

/// Counts the runtime's threads in as they start, each after an allocation
/// (so after it has taken its arena).
#[derive(Debug, Default)]
struct Started {
    count: std::sync::Mutex<usize>,
    changed: std::sync::Condvar,
}

impl Started {
    fn arrived(&self) {
        drop(std::hint::black_box(Box::new(0_u64)));
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *count += 1;
        self.changed.notify_all();
    }

    fn wait_for(&self, threads: usize, limit: Duration) {
        let count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        drop(
            self.changed
                .wait_timeout_while(count, limit, |n| *n < threads),
        );
    }
}

/// Trims after [`SETTLE`], then every [`EVERY`], until `shutdown`.
pub async fn give_back_while_serving(shutdown: CancellationToken) {
    let mut wait = SETTLE;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        give_back();
        wait = EVERY;
    }
}

/// Returns the free whole pages of every malloc arena to the kernel; true
/// when there were some.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn give_back() -> bool {
    // SAFETY: malloc_trim takes no pointers and has no preconditions; it
    // locks each arena while it walks it, so any thread may call it at any
    // time (glibc's malloc/malloc.c).
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// VmRSS in KiB.
    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The tests below measure the process's RSS; one at a time.
    static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn large_blocks_go_back_when_freed_even_after_a_larger_one() {
        let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
        keep_large_blocks_apart();
        // Freed, a mapped block of 4 MiB would raise glibc's threshold to 4 MiB.
        drop(std::hint::black_box(vec![1u8; 4 << 20]));
        const BLOCK: usize = 384 * 1024;
        // Small blocks in use between the large ones, as a page's rows are.
        let mut held = Vec::new();
        let mut large = Vec::new();
        for i in 0..32 {
            large.push(vec![(i % 251) as u8 + 1; BLOCK]);
            held.push(std::hint::black_box(Box::new(i)));
        }
        let before = resident_kib();
        drop(large);
        let after = resident_kib();
        assert_eq!(held.len(), 32);
        // 12 MiB were freed, with no trim.
        assert!(
            before.saturating_sub(after) >= 8 * 1024,
            "resident {before} KiB before the free, {after} KiB after"
        );
    }

    #[test]
    fn memory_freed_between_blocks_in_use_goes_back_to_the_kernel() {
        let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
        const BLOCK: usize = 32 * 1024; // below malloc's mmap threshold: from an arena
        // Every sixteenth block stays in use, so the freed ones lie between
        // blocks in use, where free() alone never returns them.
        let mut blocks: Vec<Option<Vec<u8>>> = (0..1024)
            .map(|i| Some(vec![(i % 251) as u8 + 1; BLOCK]))
            .collect();
        for (i, block) in blocks.iter_mut().enumerate() {
            if i % 16 != 15 {
                *block = None;
            }
        }
        let freed = resident_kib();
        assert!(give_back(), "malloc_trim found nothing to return");
        let trimmed = resident_kib();
        let kept: usize = blocks.iter().flatten().map(Vec::len).sum();
        assert_eq!(kept, 64 * BLOCK);
        // 30 MiB were freed; tests running beside this one allocate too.
        assert!(
            freed.saturating_sub(trimmed) >= 15 * 1024,
            "resident {freed} KiB before the trim, {trimmed} KiB after"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_trims_stop_with_the_service() {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(give_back_while_serving(shutdown.clone()));
        tokio::time::sleep(SETTLE + EVERY * 3).await;
        assert!(!task.is_finished());
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("stopped at once")
            .expect("no panic");
    }
}
