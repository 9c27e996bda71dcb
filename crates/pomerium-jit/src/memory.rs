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
//! Other C libraries (musl) have no such call, and this does nothing there.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// From serving to the first trim: by then start-up's garbage (the router's
/// build, the first sync of each policy, the first pages) is freed.
const SETTLE: Duration = Duration::from_secs(1);
/// Between trims afterwards.
const EVERY: Duration = Duration::from_secs(30);

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

    #[test]
    fn memory_freed_between_blocks_in_use_goes_back_to_the_kernel() {
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
