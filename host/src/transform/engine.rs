//! The process's one wasmtime [`Engine`] and the epoch ticker that backs wall-clock deadlines.

use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::{Config, Engine};

/// How often the epoch advances; deadlines are whole ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The shared engine: fuel metering (the deterministic per-record CPU budget) and epoch
/// interruption (the wall-clock backstop) are on for every store.
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.consume_fuel(true).epoch_interruption(true);
        let engine = Engine::new(&config).expect("a default config with fuel and epochs is valid");
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

/// Whole epoch ticks covering `deadline` (at least one).
pub(crate) fn deadline_ticks(deadline: Duration) -> u64 {
    let ticks = deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}
