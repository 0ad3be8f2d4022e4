//! The binaries' terminal output. `println!` panics when stdout is a closed
//! pipe (`taskmasterctl metrics | head`); these end the client quietly
//! instead (exit 0: whoever closed the pipe has what it wanted), and a closed
//! stderr is ignored.

use std::fmt::Arguments;
use std::io::Write;

pub fn stdout_line(args: Arguments) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if written.is_err() {
        std::process::exit(0);
    }
}

pub fn stderr_line(args: Arguments) {
    let _ = writeln!(std::io::stderr(), "{args}");
}

/// `println!` that never panics (see the module).
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::client::out::stdout_line(format_args!($($t)*)) };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! tell {
    ($($t:tt)*) => { $crate::client::out::stderr_line(format_args!($($t)*)) };
}
