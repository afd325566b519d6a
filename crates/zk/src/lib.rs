//! nullgate-zk
