//! The process's one wasmtime [`Engine`], the epoch ticker that backs wall-clock deadlines, and
//! the cross-compiling engines that precompile artifacts for other architectures.
//!
//! Every engine names its target explicitly. Wasmtime then compiles for the target's baseline
//! CPU instead of the features it detects on this machine, so an artifact compiled anywhere for
//! a target loads on every CPU of it (Lambda's machines differ), and engines built here and on
//! a publisher for the same target agree on their compatibility hash.

use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::{Config, Engine};

/// How often the epoch advances; deadlines are whole ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The targets every published transform is precompiled for: Lambda's two architectures.
pub const LAMBDA_TARGETS: [&str; 2] = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"];

/// The target this host was built for.
pub fn host_target() -> String {
    target_lexicon::HOST.to_string()
}

/// The shared engine: fuel metering (the deterministic per-record CPU budget) and epoch
/// interruption (the wall-clock backstop) are on for every store.
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let engine = engine_for(&host_target()).expect("this host's own target is supported");
        // The engine lives as long as the process, and so does its ticker.
        let ticker = engine.clone();
        std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                loop {
                    ticker.increment_epoch();
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("spawning the epoch thread at start-up");
        engine
    })
}

/// An engine configured as the host's, compiling for `target` (a target triple). One for
/// another architecture can only precompile.
pub(crate) fn engine_for(target: &str) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .target(target)?;
    Engine::new(&config)
}

/// Whole epoch ticks covering `deadline` (at least one).
pub(crate) fn deadline_ticks(deadline: Duration) -> u64 {
    let ticks = deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}
