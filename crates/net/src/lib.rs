//! nullgate-net
