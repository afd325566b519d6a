//! The receipt parser, raw and as a header value: whatever parses re-encodes to the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nullgate_protocol::receipt::Receipt;

fuzz_target!(|data: &[u8]| {
    if let Ok(receipt) = Receipt::from_bytes(data) {
        assert_eq!(receipt.to_bytes(), data);
    }
    let _ = Receipt::from_header(data);
});
