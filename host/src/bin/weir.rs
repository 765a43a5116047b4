//! The `weir` command line: `weir run` ingests files, directories or stdin into a lake;
//! `weir check` shows what a transform decides for given events.

fn main() -> std::process::ExitCode {
    weir::cli::main()
}
