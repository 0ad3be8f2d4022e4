//! Taskmaster: a process supervisor on one single-threaded mio event loop.

pub mod alerts;
pub mod attach;
pub mod authlimit;
pub mod avail;
pub mod client;
pub mod commands;
pub mod config;
pub mod conn;
pub mod control;
pub mod daemonize;
pub mod deps;
pub mod eventlog;
pub mod fdlimit;
pub mod follow;
pub mod footprint;
pub mod http;
pub mod http_serve;
pub mod lifecycle;
pub mod listen;
pub mod metrics;
pub mod notify;
pub mod oneshot;
pub mod outfile;
pub mod output;
pub mod preflight;
pub mod probe;
pub mod procscan;
/// For the property tests (unit and integration): their case counts.
#[doc(hidden)]
pub mod proptest_env;
pub mod protocol;
pub mod reactor;
pub mod reap;
pub mod recovery;
pub mod reload;
pub mod report;
pub mod rotate;
pub mod serve;
pub mod signals;
#[cfg(test)]
mod size_budgets;
pub mod spawn;
pub mod state;
pub mod supervisor;
pub mod syslog;
pub mod telnet;
pub mod timers;
pub mod trimmer;
