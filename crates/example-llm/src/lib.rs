#![doc = include_str!("../README.md")]

mod chat;
mod content;
mod embeddings;
mod error;
mod messages;
mod reply;
mod responses;
mod server;
mod sse;
mod tokens;

pub use error::Error;
pub use server::{
    Counters, CountersSnapshot, DEFAULT_MODEL, ExampleLlmConfig, MAX_REQUEST_BYTES,
    RunningExampleLlm, router, serve, start,
};
