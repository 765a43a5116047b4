//! The batch pipeline's speed: the retail transform in wasm against the same logic as native
//! Rust, and each stage on its own, on 10,000 generated ~1 KB retail events. Ratios come from
//! one run on one machine, so they compare like with like.
//!
//! Times are CPU time (all threads), medians of 9 runs. Run with `taskset -c 1 cargo bench -p
//! weir-host` (one core, so the figures are per core)
//! after building the retail transform for wasm32-wasip1 (`scripts/test` or `scripts/demo` do);
//! `cargo bench -p weir-host -- lambda` runs only the Lambda handler part.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;
use weir::batch::pipeline::{PipelineConfig, encode_batch};
use weir::batch::sort::transform_batch;
use weir::lake::format::Format;
use weir::source::failure::Failure;
use weir::source::record::{Batch, Record};
use weir::transform::{Output, RecordTransform, TransformId, TransformLimits, WasmTransform};

mod common;

use common::{decode, generate, measure};

/// The allocator the binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 10_000;
const BATCH: usize = 1_000;
/// A guest that does no work of its own: it takes each record and names the same three-segment
/// partition, so its time is what the ABI costs per record (copying the record in, two calls,
/// three imports, the CPU budget's bookkeeping).
const EMPTY_GUEST: &str = r#"(module
  (import "weir_v1" "partition" (func $partition (param i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "sectiondthrBooks2024-01-0112")
  (func (export "weir_v1_init"))
  (func (export "weir_v1_input") (param i32) (result i32) i32.const 1024)
  (func (export "weir_v1_transform") (param i32 i32 i32 i64) (result i32)
    (call $partition (i32.const 16) (i32.const 7) (i32.const 27) (i32.const 5))
    (call $partition (i32.const 23) (i32.const 2) (i32.const 32) (i32.const 10))
    (call $partition (i32.const 25) (i32.const 2) (i32.const 42) (i32.const 2))
    i32.const 0))"#;

fn main() {
    let wasm_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip1/release/retail.wasm");
    let module = std::fs::read(&wasm_path).unwrap_or_else(|e| {
        panic!("{}: {e}; build it first: cargo build --release --target wasm32-wasip1 -p weir-transform-retail", wasm_path.display())
    });
    let wasm = WasmTransform::from_bytes("retail", &module, TransformLimits::default())
        .expect("retail loads");
    let id = wasm.id().clone();
    let ndjson = generate(EVENTS);
    // `cargo bench -p weir-host -- lambda` runs only the Lambda handler part.
    if std::env::args().any(|a| a == "lambda") {
        lambda_handler(&module, &ndjson);
        return;
    }
    let batches = decode(&ndjson, BATCH);
    let bytes = ndjson.len();
    println!(
        "{EVENTS} events, {:.0} bytes each, batches of {BATCH}\n",
        bytes as f64 / EVENTS as f64
    );
    let config = PipelineConfig::default();

    let decode_t = measure(|| black_box(decode(&ndjson, BATCH)).len());
    let transform_wasm = measure_sessions(&batches, || wasm.session());
    let transform_native = measure_sessions(&batches, Native::default);
    let empty = WasmTransform::from_bytes(
        "empty",
        &wat::parse_str(EMPTY_GUEST).expect("valid WAT"),
        TransformLimits::default(),
    )
    .expect("the empty guest loads");
    let transform_empty = measure_sessions(&batches, || empty.session());
    let group = measure(|| {
        batches
            .iter()
            .map(|b| {
                transform_batch(b, &mut Replay::recorded(b), &config)
                    .groups
                    .len()
            })
            .sum()
    }) - measure(|| {
        batches
            .iter()
            .map(|b| Replay::recorded(b).outputs.len())
            .sum()
    });
    let sorted: Vec<_> = batches
        .iter()
        .map(|b| transform_batch(b, &mut wasm.session(), &config))
        .collect();
    let encode_at = |level| {
        measure(|| {
            batches
                .iter()
                .zip(&sorted)
                .map(|(b, s)| encode_batch(b, s, &id, level, Format::Json).objects.len())
                .sum()
        })
    };
    let (encode_1, encode_6) = (encode_at(1), encode_at(6));
    // The same NDJSON objects, compressed with zstd instead.
    let zstd_at = |level| {
        let mut zstd = weir::lake::encode::Zstd::new(level);
        let mut ndjson = Vec::new();
        let mut compressed = 0;
        let time = measure(|| {
            compressed = 0;
            for (batch, sorted) in batches.iter().zip(&sorted) {
                for group in &sorted.groups {
                    ndjson.clear();
                    for member in &group.members {
                        weir::lake::encode::push_line(
                            &mut ndjson,
                            &batch.records[member.record].data,
                        );
                    }
                    compressed += zstd.compress(&ndjson).len();
                }
            }
            compressed
        });
        (time, compressed)
    };
    let ((zstd_1, zstd_1_size), (zstd_3, zstd_3_size)) = (zstd_at(1), zstd_at(3));
    let pipeline_wasm = measure_pipeline(&batches, &config, &id, || wasm.session());
    let pipeline_native = measure_pipeline(&batches, &config, &id, Native::default);

    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    let row = |name: &str, d: Duration| {
        println!(
            "{name:<34} {:>9.1} ms {:>10.0} events/s {:>8.1} MB/s",
            d.as_secs_f64() * 1e3,
            rate(d),
            bytes as f64 / d.as_secs_f64() / 1e6
        );
    };
    row("decode (NDJSON -> records)", decode_t);
    row("transform, wasm", transform_wasm);
    row("transform, native", transform_native);
    row("transform, empty wasm guest", transform_empty);
    row("group (paths + grouping)", group);
    row("encode + gzip level 1", encode_1);
    row("encode + gzip level 6", encode_6);
    row("encode + zstd level 1", zstd_1);
    row("encode + zstd level 3", zstd_3);
    row("pipeline, wasm", pipeline_wasm);
    row("pipeline, native", pipeline_native);
    println!();
    println!(
        "transform wasm / native:  {:.2}x",
        transform_wasm.as_secs_f64() / transform_native.as_secs_f64()
    );
    println!(
        "pipeline wasm / native:   {:.2}x",
        pipeline_wasm.as_secs_f64() / pipeline_native.as_secs_f64()
    );
    println!(
        "gzip level 6 / level 1:   {:.2}x",
        encode_6.as_secs_f64() / encode_1.as_secs_f64()
    );
    let size = |level| {
        batches
            .iter()
            .zip(&sorted)
            .flat_map(|(b, s)| encode_batch(b, s, &id, level, Format::Json).objects)
            .map(|o| o.body.len())
            .sum::<usize>()
    };
    println!(
        "gzip level 1 / zstd 1:    {:.2}x",
        encode_1.as_secs_f64() / zstd_1.as_secs_f64()
    );
    println!(
        "compression ratio:        gzip 1 {:.1}, gzip 6 {:.1}, zstd 1 {:.1}, zstd 3 {:.1}",
        bytes as f64 / size(1) as f64,
        bytes as f64 / size(6) as f64,
        bytes as f64 / zstd_1_size as f64,
        bytes as f64 / zstd_3_size as f64
    );
    instances_and_loads(&wasm, &module, &batches[0].records[0]);
    lambda_handler(&module, &ndjson);
}

/// What a batch pays to start (a fresh instance) and a host pays to load a module: compiling
/// it, taking it from the local compile cache, or deserializing a precompiled artifact.
fn instances_and_loads(wasm: &WasmTransform, module: &[u8], record: &Record) {
    let warm = {
        let mut session = wasm.session();
        measure(|| (0..100).filter(|_| session.apply(record).is_ok()).count()) / 100
    };
    let fresh = measure(|| {
        (0..100)
            .filter(|_| wasm.session().apply(record).is_ok())
            .count()
    }) / 100;
    let limits = TransformLimits::default();
    let cache = std::env::temp_dir().join(format!("weir-bench-cache-{}", std::process::id()));
    let load_with_cache = |dir: &Path| {
        // SAFETY: the benchmark is single-threaded here; nothing reads the environment at once.
        unsafe { std::env::set_var("WEIR_CACHE_DIR", dir) };
        measure(|| {
            let loaded = WasmTransform::from_bytes("retail", module, limits).expect("loads");
            loaded.id().sha256.len()
        })
    };
    let compile = load_with_cache(Path::new(""));
    let cached = load_with_cache(&cache);
    let _ = std::fs::remove_dir_all(&cache);
    let artifact =
        weir::transform::precompile(module, &weir::transform::host_target()).expect("precompiles");
    let sha256 = wasm.id().sha256.clone();
    let precompiled = measure(|| {
        let loaded = WasmTransform::from_precompiled("retail", &sha256, &artifact.bytes, limits)
            .expect("loads");
        loaded.id().sha256.len()
    });
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!();
    println!("Starting up ({} KB module):", module.len() / 1024);
    println!(
        "  instance per batch         {:>8.1} us (first record {:.1} us, warm record {:.1} us)",
        us(fresh.saturating_sub(warm)),
        us(fresh),
        us(warm)
    );
    println!("  load, compiling            {:>8.1} ms", us(compile) / 1e3);
    println!("  load, compile cache        {:>8.1} ms", us(cached) / 1e3);
    println!(
        "  load, precompiled artifact {:>8.1} ms ({:.0}x faster than compiling)",
        us(precompiled) / 1e3,
        compile.as_secs_f64() / precompiled.as_secs_f64()
    );
}

/// The Lambda handler on a payload-limit KinesisEvent (6 MB of JSON, base64 records): event
/// parsing, base64 decoding, the wasm pipeline, and a store that discards.
fn lambda_handler(module: &[u8], ndjson: &[u8]) {
    use base64::Engine as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let mut records = Vec::new();
    let mut payload_bytes = 20;
    let lines = ndjson.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    for (i, line) in lines.cycle().enumerate() {
        let sequence = format!("4959033827149025660855969253836157109592157598913{i:07}");
        let record = serde_json::json!({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": format!("user-{}", i % 977),
                "sequenceNumber": sequence,
                "data": base64::engine::general_purpose::STANDARD.encode(line),
                "approximateArrivalTimestamp": 1_700_000_000.125
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": format!("shardId-000000000000:{sequence}"),
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::000000000000:role/weir",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/events"
        });
        let size = record.to_string().len() + 1;
        if payload_bytes + size > weir::source::MAX_BATCH_BYTES {
            break;
        }
        payload_bytes += size;
        records.push(record);
    }
    let count = records.len();
    let payload = serde_json::to_vec(&serde_json::json!({ "Records": records })).expect("JSON");
    let transform = WasmTransform::from_bytes("retail", module, TransformLimits::default())
        .expect("retail loads");
    let handler = runtime.block_on(async {
        let pipeline = weir::app::pipeline("discard:", "discard:", PipelineConfig::default())
            .await
            .expect("discard opens");
        weir::batch::handler::Handler::new(
            pipeline,
            std::sync::Arc::new(weir::registry::active::ActiveTransform::fixed(transform)),
            false,
        )
    });
    let parse = measure(|| {
        let event: weir::source::kinesis::KinesisEvent =
            serde_json::from_slice(&payload).expect("an event");
        event.records.len()
    });
    let whole = measure(|| {
        let event = serde_json::from_slice(&payload).expect("an event");
        let response = runtime
            .block_on(handler.handle_event(event))
            .expect("valid sequence numbers");
        response.batch_item_failures.len()
    });
    println!();
    println!(
        "Lambda handler, one {:.1} MB KinesisEvent of {count} records (store discards):",
        payload.len() as f64 / 1e6
    );
    println!(
        "  parse + base64 decode      {:>8.1} ms",
        parse.as_secs_f64() * 1e3
    );
    println!(
        "  whole invocation           {:>8.1} ms {:>10.0} records/s",
        whole.as_secs_f64() * 1e3,
        count as f64 / whole.as_secs_f64()
    );
}

/// Transform time alone, one session per batch as the pipeline uses them.
fn measure_sessions<T: RecordTransform>(
    batches: &[Batch],
    mut session: impl FnMut() -> T,
) -> Duration {
    measure(|| {
        batches
            .iter()
            .map(|b| {
                let mut s = session();
                b.records.iter().filter(|r| s.apply(r).is_ok()).count()
            })
            .sum()
    })
}

/// The whole batch pipeline short of storage: transform, group, encode and gzip.
fn measure_pipeline<T: RecordTransform>(
    batches: &[Batch],
    config: &PipelineConfig,
    id: &TransformId,
    mut session: impl FnMut() -> T,
) -> Duration {
    measure(|| {
        batches
            .iter()
            .map(|b| {
                let sorted = transform_batch(b, &mut session(), config);
                encode_batch(b, &sorted, id, config.gzip_level, config.format)
                    .objects
                    .len()
            })
            .sum()
    })
}

/// The retail logic compiled natively, behind the same interface as a wasm session.
#[derive(Default)]
struct Native {
    output: Output,
}

impl RecordTransform for Native {
    fn apply(&mut self, record: &Record) -> Result<&Output, Failure> {
        self.output.clear();
        let sequence = record.position.sequence_number();
        let input = weir_guest_sdk::Record::new(&record.data)
            .with_arrival(record.arrival)
            .with_partition_key(&record.partition_key)
            .with_sequence_number(sequence);
        match retail::transform(&input) {
            Ok(partition) => {
                for (name, value) in partition.segments() {
                    self.output.push_segment(name.as_bytes(), value.as_bytes());
                }
                if let Some(body) = partition.body() {
                    self.output.set_body(body);
                }
            }
            Err(rejection) => self
                .output
                .set_rejection(rejection.code().as_bytes(), rejection.message().as_bytes()),
        }
        Ok(&self.output)
    }
}

/// Answers recorded beforehand, so the grouping stage is measured without a transform.
struct Replay {
    outputs: Vec<Output>,
    next: usize,
}

impl Replay {
    fn recorded(batch: &Batch) -> Self {
        let mut native = Native::default();
        let outputs = batch
            .records
            .iter()
            .map(|r| {
                native.apply(r).expect("native never fails");
                std::mem::take(&mut native.output)
            })
            .collect();
        Self { outputs, next: 0 }
    }
}

impl RecordTransform for Replay {
    fn apply(&mut self, _: &Record) -> Result<&Output, Failure> {
        self.next += 1;
        Ok(&self.outputs[self.next - 1])
    }
}
