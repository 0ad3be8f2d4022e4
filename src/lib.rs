//! Taskmaster: a process supervisor on one single-threaded mio event loop.

pub mod config;
pub mod signals;
pub mod state;
pub mod protocol;
pub mod spawn;
pub mod timers;
pub mod report;
pub mod supervisor;
pub mod conn;
pub mod control;
pub mod reactor;
pub mod eventlog;
pub mod client;
