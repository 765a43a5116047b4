//! The retail transform in each language, on the same 2,000 generated ~1 KB events: Rust (a
//! core module) against Python (a component with CPython inside) and JavaScript (a component
//! with SpiderMonkey inside). Per-record CPU through the
//! batch path the pipeline uses, a fresh instance, memory per live instance, module and
//! artifact sizes, and loading: compiling against a precompiled artifact (the cold start).
//!
//! `scripts/bench` builds them first; run alone with `taskset -c 1 cargo bench -p weir-host
//! --bench languages` once `target/bench/retail-python.wasm` and `retail-js.wasm` exist
//! (`WEIR_BENCH_PYTHON` and `WEIR_BENCH_JS` override the paths).

mod common;

use common::{decode, generate, measure};
use std::path::{Path, PathBuf};
use std::time::Duration;
use weir::batch::pipeline::PipelineConfig;
use weir::batch::sort::transform_batch;
use weir::transform::{RecordTransform, TransformLimits, WasmTransform, host_target, precompile};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 2_000;
const BATCH: usize = 500;
const INSTANCES: usize = 20;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rust = root.join("target/wasm32-wasip1/release/retail.wasm");
    let component = |var: &str, file: &str| {
        std::env::var_os(var).map_or_else(|| root.join("target/bench").join(file), PathBuf::from)
    };
    let python = component("WEIR_BENCH_PYTHON", "retail-python.wasm");
    let js = component("WEIR_BENCH_JS", "retail-js.wasm");
    let ndjson = generate(EVENTS);
    let batches = decode(&ndjson, BATCH);
    println!("{EVENTS} events in batches of {BATCH}, one core\n");
    println!(
        "{:<8} {:>10} {:>10} {:>12} {:>11} {:>10} {:>10} {:>12}",
        "", "us/record", "instance", "MiB/instance", "module", "artifact", "compile", "precompiled"
    );
    let mut per_record = Vec::new();
    for (name, path) in [("Rust", rust), ("Python", python), ("JS", js)] {
        let module = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e}; scripts/bench builds it", path.display());
        });
        // Compiling, not the compile cache: what a host without an artifact pays.
        // SAFETY: single-threaded here; nothing reads the environment at the same time.
        unsafe { std::env::set_var("WEIR_CACHE_DIR", "") };
        let limits = TransformLimits::default();
        let compile = measure_once(|| {
            WasmTransform::from_bytes(name, &module, limits).expect("loads");
        });
        let transform = WasmTransform::from_bytes(name, &module, limits).expect("loads");
        let config = PipelineConfig::default();
        let all = measure(|| {
            batches
                .iter()
                .map(|b| {
                    let sorted = transform_batch(b, &mut transform.session(), &config);
                    assert!(sorted.failures.is_empty(), "{name}: {:?}", sorted.failures);
                    sorted.groups.len()
                })
                .sum()
        });
        let record = &batches[0].records[0];
        let instance = measure(|| {
            (0..20)
                .filter(|_| transform.session().apply(record).is_ok())
                .count()
        }) / 20;
        let warm = {
            let mut session = transform.session();
            measure(|| (0..20).filter(|_| session.apply(record).is_ok()).count()) / 20
        };
        let rss_before = rss_kib();
        let mut live: Vec<_> = (0..INSTANCES).map(|_| transform.session()).collect();
        for session in &mut live {
            session.apply(record).expect("the record is valid");
        }
        let per_instance = (rss_kib() - rss_before) as f64 / 1024.0 / INSTANCES as f64;
        drop(live);
        let artifact = precompile(&module, &host_target()).expect("precompiles");
        let sha256 = transform.id().sha256.clone();
        let precompiled = measure(|| {
            WasmTransform::from_precompiled(name, &sha256, &artifact.bytes, limits)
                .expect("loads")
                .id()
                .sha256
                .len()
        });
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let record_us = us(all) / EVENTS as f64;
        per_record.push(record_us);
        println!(
            "{name:<8} {record_us:>10.2} {:>8.0}us {per_instance:>12.1} {:>9.1}MB {:>8.1}MB {:>9.2}s {:>10.1}ms",
            us(instance.saturating_sub(warm)),
            module.len() as f64 / 1e6,
            artifact.bytes.len() as f64 / 1e6,
            compile.as_secs_f64(),
            us(precompiled) / 1e3,
        );
    }
    println!();
    for (name, us) in [("Python", per_record[1]), ("JS", per_record[2])] {
        println!(
            "{name} / Rust per record: {:.1}x; one shard (2,000 events/s of 1 KB) needs {:.1}% of a core",
            us / per_record[0],
            us * 2_000.0 / 1e6 * 100.0
        );
    }
}

/// One run's CPU time (compiling is too slow to repeat nine times).
fn measure_once(run: impl FnOnce()) -> Duration {
    let start = common::cpu_time();
    run();
    common::cpu_time() - start
}

/// The process's resident set, in KiB.
fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS is in /proc/self/status")
}
