//! Running the `weir` binary from tests: its output, and whether it succeeded or refused.

use crate::aws::aws_env;
use std::process::{Command, Output};

/// Runs `weir ARGS...`, pointed at the AWS stand-in `endpoint` when given.
pub fn weir(endpoint: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(crate::weir_bin());
    command.args(args);
    if let Some(endpoint) = endpoint {
        aws_env(&mut command, endpoint);
    }
    command.output().expect("weir runs")
}

/// The stdout of a run that must succeed; panics with both outputs otherwise.
pub fn ok(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The stderr of a run that must fail; panics with its stdout otherwise.
pub fn refused(output: Output) -> String {
    assert!(
        !output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}
