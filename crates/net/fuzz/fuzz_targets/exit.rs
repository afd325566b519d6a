//! The exit's request and reply parsers on arbitrary bytes: never a panic, and whatever
//! parses encodes back to a request that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nullgate_net::mixnet::exit::{ExitReply, ExitRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = ExitRequest::decode(data) {
        let again = ExitRequest::decode(&request.encode().expect("a parsed request encodes"));
        assert_eq!(again.expect("and parses again"), request);
    }
    let _ = ExitReply::decode(data);
});
