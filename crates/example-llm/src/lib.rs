#![doc = include_str!("../README.md")]

mod chat;
mod error;
mod server;
mod tokens;

pub use error::Error;
pub use server::{
    Counters, CountersSnapshot, DEFAULT_MODEL, ExampleLlmConfig, MAX_REQUEST_BYTES,
    RunningExampleLlm, router, serve, start,
};
