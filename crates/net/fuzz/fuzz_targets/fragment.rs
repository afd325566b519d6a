//! Fragment reassembly on arbitrary sequences of fragments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nullgate_net::mixnet::fragment::Reassembler;

fuzz_target!(|data: &[u8]| {
    let mut reassembler = Reassembler::new(4);
    // Split the input into fragments at every 0xff byte pair.
    for piece in data.split(|b| *b == 0xff) {
        let _ = reassembler.push(piece);
    }
});
