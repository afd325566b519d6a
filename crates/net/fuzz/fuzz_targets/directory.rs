//! Directory documents: signature, body and shape checks on arbitrary bytes.
#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use nullgate_net::mixnet::directory::Directory;

fuzz_target!(|data: &[u8]| {
    let authority = SigningKey::from_bytes(&[42; 32]).verifying_key();
    let _ = Directory::verify(data, &authority, 1_500);
});
