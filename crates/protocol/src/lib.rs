//! nullgate-protocol
