//! The credential parser, raw and as an `Authorization` value: whatever parses re-encodes to
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nullgate_protocol::credential::Credential;

fuzz_target!(|data: &[u8]| {
    if let Ok(credential) = Credential::from_bytes(data) {
        assert_eq!(credential.to_bytes(), data);
    }
    let _ = Credential::from_authorization(data);
});
