//! The `weir` command line: `weir run` ingests files, directories or stdin into a lake;
//! `weir check` shows what a transform decides for given events.

/// mimalloc: a batch allocates and frees many small buffers, and glibc's allocator cost ~7%
/// of a Lambda invocation in the benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    weir::cli::main()
}
