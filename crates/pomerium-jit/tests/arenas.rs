//! Each runtime worker gets a malloc arena of its own (`memory::runtime`),
//! whatever threads start after the runtime and whatever `GLIBC_TUNABLES`
//! says. A test binary without libtest: glibc hands out arenas in the order
//! threads first allocate, so the runtime has to be built on a fresh
//! process's main thread, as the binary's `main` does. The check runs in
//! child processes of this one, several times, since the failure it guards
//! against was a race.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[allow(
    dead_code,
    unused_imports,
    reason = "the binary's module; only `runtime` is used here"
)]
#[path = "../src/memory.rs"]
mod memory;

const CHILD: &str = "ARENAS_TEST_CHILD";
const STARTS: usize = 8;
const WORKERS: usize = 2;

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        println!("arenas: glibc only, skipped");
        return;
    }
    let exe = std::env::current_exe().expect("this test's path");
    for start in 1..=STARTS {
        let out = Command::new(&exe)
            .env(CHILD, "1")
            // What the image and the unit used to set: two arenas in all.
            .env("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
            .output()
            .expect("the child process");
        assert!(
            out.status.success(),
            "start {start} of {STARTS}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!("arenas: each worker had an arena of its own in {STARTS} starts of {STARTS}");
}

/// Which arena a block came from, told by where it lies: every arena but
/// the main one is carved from heaps of 64 MiB, mapped at addresses aligned
/// to that size (glibc's `HEAP_MAX_SIZE` on 64-bit); the main arena grows
/// the program break, away from all of them.
fn arena_of(block: &[u8]) -> usize {
    block.as_ptr() as usize >> 26
}

/// A block of a size nothing else here allocates, never freed, so no
/// other thread's free can have put it in this thread's cache.
fn probe() -> usize {
    arena_of(Box::leak(Box::new([1_u8; 712])))
}

fn child() {
    let runtime = memory::runtime(WORKERS).expect("the runtime");
    let main = probe();
    // What `serve` starts next: the log writer's thread, then the start-up
    // work on this one, both allocating while the workers run.
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                drop(std::hint::black_box(vec![0_u8; 300]));
            }
        })
    };
    let mut workers: HashMap<std::thread::ThreadId, BTreeSet<usize>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while workers.len() < WORKERS {
        assert!(
            Instant::now() < deadline,
            "tasks ran on {} workers only",
            workers.len()
        );
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                runtime.spawn(async {
                    // Long enough that the other worker takes the next task.
                    std::thread::sleep(Duration::from_millis(1));
                    (std::thread::current().id(), probe())
                })
            })
            .collect();
        drop(std::hint::black_box(vec![0_u8; 300]));
        for task in tasks {
            let (thread, arena) = runtime.block_on(task).expect("the task");
            workers.entry(thread).or_default().insert(arena);
        }
    }
    stop.store(true, Ordering::Relaxed);
    other.join().expect("the other thread");
    let arenas: Vec<usize> = workers
        .values()
        .map(|a| {
            assert_eq!(a.len(), 1, "a worker allocated from several arenas: {a:x?}");
            a.first().copied().unwrap_or_default()
        })
        .collect();
    let distinct: BTreeSet<usize> = arenas.iter().copied().chain([main]).collect();
    assert_eq!(
        distinct.len(),
        WORKERS + 1,
        "arenas (by 64 MiB window): workers {arenas:x?}, main thread {main:x}"
    );
}
