//! Size budgets of what the daemon holds once per program and per process:
//! at 1000 programs every byte of these is a kilobyte of heap. A field that
//! must be inline raises its budget here on purpose, with the reason; a
//! rarely used one goes behind a `Box` instead (docs/benchmarks.md,
//! "Footprint").

use std::mem::size_of;

#[test]
fn per_program_and_per_process_structs_stay_small() {
    let program = size_of::<crate::config::Program>();
    assert!(program <= 304, "Program is {program} bytes");
    let process = size_of::<crate::supervisor::Process>();
    assert!(process <= 280, "Process is {process} bytes");
    let stream = size_of::<crate::output::Stream>();
    assert!(stream <= 24, "Stream is {stream} bytes");
}
