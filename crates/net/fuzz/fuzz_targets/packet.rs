//! A mix node's per-packet step on arbitrary bytes: never panics, accepts nothing twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nullgate_net::mixnet::{node::EpochState, packet::Sphinx};
use x25519_dalek::StaticSecret;

fuzz_target!(|data: &[u8]| {
    let mut node = EpochState::new(Sphinx::new(1024), StaticSecret::from([7; 32]));
    let first = node.process(data);
    if first.is_ok() {
        assert!(node.process(data).is_err(), "a replay was accepted");
    }
});
