//! Broken and malicious guest modules: each is refused at load time with a clear error, or
//! fails only the records it traps on, which still reach the failed location.

use weir::batch::pipeline::PipelineConfig;
use weir::batch::sort::transform_batch;
use weir::source::failure::ErrorType;
use weir::transform::{LoadError, TransformLimits, WasmTransform};
use weir_tests::{batch_of, echo_section_wat, guest_wat, wasm};

fn load(wat: &str) -> Result<WasmTransform, LoadError> {
    WasmTransform::from_bytes("hostile", &wasm(wat), TransformLimits::default())
}

/// Runs the records through the module: `(accepted partition paths, failures by record)`.
fn run(
    transform: &WasmTransform,
    records: &[&[u8]],
) -> (Vec<String>, Vec<(usize, ErrorType, String)>) {
    let batch = batch_of(records, 1);
    let sorted = transform_batch(&batch, &mut transform.session(), &PipelineConfig::default());
    let accepted = sorted.groups.iter().map(|g| g.partition.clone()).collect();
    let failed = sorted
        .failures
        .into_iter()
        .map(|(i, f)| (i, f.error_type, f.code))
        .collect();
    (accepted, failed)
}

#[test]
fn refuses_a_file_that_is_not_wasm() {
    let err = WasmTransform::from_bytes("x", b"not wasm at all", TransformLimits::default())
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::NotWasm(_)), "{err}");
    let truncated = &wasm(&echo_section_wat())[..40];
    let err = WasmTransform::from_bytes("x", truncated, TransformLimits::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("not a valid WebAssembly module"),
        "{err}"
    );
}

#[test]
fn refuses_the_wrong_abi_version() {
    let wat = echo_section_wat().replace("weir_v1_init", "weir_v2_init");
    let err = load(&wat).err().unwrap();
    assert!(matches!(err, LoadError::WrongAbi { found: 2 }), "{err}");
    assert!(err.to_string().contains("ABI version 2"), "{err}");
    let err = load("(module (memory (export \"memory\") 1))")
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::NotATransform), "{err}");
}

#[test]
fn refuses_imports_outside_the_sandbox() {
    for (module, name) in [
        ("wasi_snapshot_preview1", "path_open"),
        ("wasi_snapshot_preview1", "sock_accept"),
        ("wasi_snapshot_preview1", "poll_oneoff"),
        ("env", "socket"),
    ] {
        let extra = format!(r#"(import "{module}" "{name}" (func (param i32)))"#);
        // Imports must precede other items: put it first.
        let wat = echo_section_wat().replacen("(module", &format!("(module {extra}"), 1);
        let err = load(&wat).err().unwrap();
        assert!(
            matches!(err, LoadError::ForbiddenImport { .. }),
            "{module}::{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn refuses_a_module_over_the_size_limit() {
    let limits = TransformLimits {
        max_module_bytes: 100,
        ..TransformLimits::default()
    };
    let err = WasmTransform::from_bytes("big", &wasm(&echo_section_wat()), limits)
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
}

#[test]
fn refuses_a_module_that_cannot_initialise() {
    let traps_in_init = echo_section_wat().replace(
        "(func (export \"weir_v1_init\"))",
        "(func (export \"weir_v1_init\") unreachable)",
    );
    let err = load(&traps_in_init).err().unwrap();
    assert!(matches!(err, LoadError::Instantiate(_)), "{err}");
    // 2,000 pages are 125 MiB, past the 64 MiB cap.
    let huge_memory = echo_section_wat().replace(
        "(memory (export \"memory\") 2)",
        "(memory (export \"memory\") 2000)",
    );
    let err = load(&huge_memory).err().unwrap();
    assert!(err.to_string().contains("memory cap"), "{err}");
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let transform = load(&guest_wat("(loop $forever (br $forever)) i32.const 0", "")).unwrap();
    let (accepted, failed) = run(&transform, &[b"{}"]);
    assert!(accepted.is_empty());
    assert_eq!(failed, vec![(0, ErrorType::Trap, "cpu_budget".into())]);
}

#[test]
fn a_record_past_its_wall_clock_deadline_is_stopped() {
    // Unlimited fuel leaves the epoch deadline as the only bound.
    let limits = TransformLimits {
        fuel_per_record: u64::MAX,
        deadline: std::time::Duration::from_millis(50),
        ..TransformLimits::default()
    };
    let spin = wasm(&guest_wat("(loop $forever (br $forever)) i32.const 0", ""));
    let transform = WasmTransform::from_bytes("spin", &spin, limits).unwrap();
    let (_, failed) = run(&transform, &[b"{}"]);
    assert_eq!(failed, vec![(0, ErrorType::Trap, "deadline".into())]);
}

#[test]
fn a_memory_bomb_hits_the_cap() {
    let bomb = "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) i32.const 0";
    let transform = load(&guest_wat(bomb, "")).unwrap();
    let (_, failed) = run(&transform, &[b"{}"]);
    assert_eq!(failed, vec![(0, ErrorType::Trap, "memory_cap".into())]);
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    let transform = load(&guest_wat(
        "call $recurse i32.const 0",
        "(func $recurse call $recurse)",
    ))
    .unwrap();
    let (_, failed) = run(&transform, &[b"{}"]);
    assert_eq!(failed, vec![(0, ErrorType::Trap, "stack_overflow".into())]);
}

#[test]
fn a_panic_is_reported_with_its_message() {
    let transform = load(&guest_wat(
        "(call $panic (i32.const 32) (i32.const 4)) unreachable",
        "",
    ))
    .unwrap();
    let batch = batch_of(&[b"{}"], 1);
    let sorted = transform_batch(&batch, &mut transform.session(), &PipelineConfig::default());
    let failure = &sorted.failures[0].1;
    assert_eq!(
        (failure.error_type, failure.code.as_str()),
        (ErrorType::Trap, "panic")
    );
    assert!(failure.message.contains("boom"), "{}", failure.message);
}

#[test]
fn an_oversized_answer_is_cut_off() {
    // Grow to 4 MiB, then claim a 3 MiB body: over the 2 MiB output cap.
    let body = "(drop (memory.grow (i32.const 62))) (call $body (i32.const 0) (i32.const 3145728)) i32.const 0";
    let transform = load(&guest_wat(body, "")).unwrap();
    let (_, failed) = run(&transform, &[b"{}"]);
    assert_eq!(
        failed,
        vec![(0, ErrorType::InvalidOutput, "output_cap".into())]
    );
}

#[test]
fn pointers_outside_guest_memory_are_caught() {
    let body =
        "(call $partition (i32.const 16) (i32.const 7) (i32.const -8) (i32.const 64)) i32.const 0";
    let transform = load(&guest_wat(body, "")).unwrap();
    let (_, failed) = run(&transform, &[b"{}"]);
    assert_eq!(
        failed,
        vec![(0, ErrorType::InvalidOutput, "bad_pointer".into())]
    );
}

#[test]
fn answers_that_break_the_abi_are_invalid_output() {
    for (body, code) in [
        ("i32.const 7", "bad_status"),
        ("i32.const 0", "no_partition"),
        ("i32.const 1", "inconsistent"),
        (
            "(call $body (i32.const 16) (i32.const 2)) (call $body (i32.const 16) (i32.const 2)) i32.const 0",
            "protocol",
        ),
        (
            "(call $partition (i32.const 16) (i32.const 7) (i32.const 16) (i32.const 7)) \
             (call $reject (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 4)) i32.const 1",
            "protocol",
        ),
    ] {
        let transform = load(&guest_wat(body, "")).unwrap();
        let (_, failed) = run(&transform, &[b"{}"]);
        assert_eq!(
            failed,
            vec![(0, ErrorType::InvalidOutput, code.into())],
            "{body}"
        );
    }
}

#[test]
fn a_trap_fails_only_its_own_record_and_the_next_gets_a_fresh_instance() {
    // Traps on records starting with `x`; otherwise counts calls in a global and partitions by
    // the count, which a fresh instance resets.
    let body = r#"
      (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 120)) (then unreachable))
      (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
      (i32.store8 (i32.const 48) (i32.add (i32.const 48) (global.get $calls)))
      (call $partition (i32.const 16) (i32.const 7) (i32.const 48) (i32.const 1))
      i32.const 0"#;
    let transform = load(&guest_wat(body, "(global $calls (mut i32) (i32.const 0))")).unwrap();
    let (accepted, failed) = run(&transform, &[b"a", b"b", b"x", b"c"]);
    assert_eq!(failed, vec![(2, ErrorType::Trap, "unreachable".into())]);
    // `a` and `b` share an instance (calls 1, 2); `c` runs in a new one (calls 1 again).
    assert_eq!(
        accepted,
        vec!["section=1".to_owned(), "section=2".to_owned()]
    );
}

#[test]
fn partition_values_from_the_guest_are_escaped_by_the_host() {
    let transform = load(&echo_section_wat()).unwrap();
    let (accepted, failed) = run(
        &transform,
        &[
            b"../../etc",
            b"a/b=c%",
            b"",
            b"\x00\n",
            "日本".as_bytes(),
            b"\xff",
        ],
    );
    assert_eq!(
        accepted,
        vec![
            "section=..%2F..%2Fetc",
            "section=a%2Fb%3Dc%25",
            "section=%00%0A",
            "section=日本"
        ]
    );
    assert_eq!(
        failed,
        vec![
            (2, ErrorType::InvalidRecord, "empty".into()),
            (5, ErrorType::InvalidPartition, "value_not_utf8".into())
        ]
    );
}

/// This process's resident memory, in bytes (Linux).
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn memory_stays_bounded_when_every_other_record_fills_memory_and_traps() {
    // Records starting with `b` grow memory to 56 MiB, just under the 64 MiB cap (growing
    // past it traps at once), write to every page (so the pages are really resident), then
    // trap; the others are accepted. Each trap replaces the instance: if trapped instances'
    // memory were kept, 40 bombs would hold over 2 GiB.
    let bomb = r#"
      (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 98))
        (then
          (drop (memory.grow (i32.const 900)))
          (local.set $key_len (i32.const 0))
          (loop $touch
            (i32.store8 (i32.mul (local.get $key_len) (i32.const 65536)) (i32.const 1))
            (local.set $key_len (i32.add (local.get $key_len) (i32.const 1)))
            (br_if $touch (i32.lt_u (local.get $key_len) (memory.size))))
          unreachable))
      (call $partition (i32.const 16) (i32.const 7) (i32.const 1024) (local.get $data_len))
      i32.const 0"#;
    let transform = load(&guest_wat(bomb, "")).unwrap();
    let records: Vec<&[u8]> = (0..80)
        .map(|n| if n % 2 == 0 { &b"b"[..] } else { b"ok" })
        .collect();
    run(&transform, &records[..4]);
    let before = resident_bytes();
    let (accepted, failed) = run(&transform, &records);
    let grown = resident_bytes().saturating_sub(before);
    assert_eq!(
        accepted,
        ["section=ok"],
        "the records between the bombs are unaffected"
    );
    assert_eq!(failed.len(), 40);
    assert!(
        failed
            .iter()
            .all(|(i, t, code)| i % 2 == 0 && *t == ErrorType::Trap && code == "unreachable"),
        "{failed:?}"
    );
    assert!(
        grown < 512 << 20,
        "resident memory grew by {} MiB over 40 filled-and-trapped instances",
        grown >> 20
    );
}
