//! The text and list formats a client reads from a gateway: the price list (canonical only),
//! the leaf list and the well-known document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nullgate_protocol::{price::PriceList, tree, well_known::WellKnown};

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = PriceList::parse(data) {
        assert_eq!(list.to_bytes(), data);
    }
    if let Ok(leaves) = tree::decode_leaves(data, 1 << 16) {
        assert_eq!(tree::encode_leaves(&leaves), data);
    }
    let _ = WellKnown::parse(data);
});
