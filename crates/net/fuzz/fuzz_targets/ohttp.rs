//! OHTTP: opening encapsulated requests, and Binary HTTP requests and responses.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use nullgate_net::{HttpRequest, HttpResponse, ohttp::KeyRing};

thread_local! {
    static KEYS: KeyRing =
        KeyRing::derive(1, b"fuzzing key, 32 bytes of ikm!!!!", Duration::from_secs(60))
            .expect("a fixed key derives");
}

fuzz_target!(|data: &[u8]| {
    KEYS.with(|keys| {
        let _ = keys.open(data, Instant::now());
    });
    if let Ok(request) = HttpRequest::from_bhttp(data) {
        let encoded = request.to_bhttp().expect("a decoded request encodes");
        assert_eq!(HttpRequest::from_bhttp(&encoded).expect("round trip"), request);
    }
    let _ = HttpResponse::from_bhttp(data);
});
