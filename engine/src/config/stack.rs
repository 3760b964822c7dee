//! Where configuration files are compiled: on a thread with a big stack.
//!
//! Deserializing recurses once per level of YAML nesting, and a recursive shape (a segment
//! filter's `and`/`or`/`not`) costs many serde frames per level: a debug build needs about
//! 140 KiB per level, so the 64 levels serde-saphyr allows take ~9 MiB, more than a main
//! thread's 8 MiB and far more than a test thread's 2 MiB. CEL parsing recurses deeply too
//! (see `crate::expr`). The front ends therefore run on a thread of their own whose stack
//! is big enough for anything the parsers let through: a deeply nested file is a located
//! error or a compiled file, never a stack overflow. Only touched pages are ever committed.

/// Stack size of the compiling thread.
pub const CONFIG_STACK: usize = 256 << 20;

/// Runs `f` on a thread with a [`CONFIG_STACK`]-byte stack and returns its result (a panic in
/// `f` is resumed on the caller's thread). When no thread can be had, `f` runs on the
/// caller's thread (fine for all but extreme nesting).
pub fn on_config_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // Shared by the thread and the fallback; whichever runs takes it.
    let f = std::sync::Mutex::new(Some(f));
    let run = || {
        let f = f.lock().unwrap_or_else(|e| e.into_inner()).take();
        f.map(|f| f())
    };
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("config-compile".into())
            .stack_size(CONFIG_STACK)
            .spawn_scoped(scope, run);
        let done = match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => run(),
        };
        done.expect("`f` runs exactly once: on the thread, or here when there is none")
    })
}
