//! A long-lived client follows the gateway's OHTTP key as the vault pins it (PROTOCOL §2
//! `ohttpKeysHash`): every sync reads the pin at the finalised block and hands it to the
//! transport, which refuses a served key that does not hash to it. (The refetch itself, with
//! a rotating gateway, is tested in `nullgate-net`'s OHTTP tests.)
mod common;

use common::*;
use nullgate_chain::B256;

#[tokio::test(flavor = "multi_thread")]
async fn every_sync_follows_the_key_the_vault_pins() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    let old = world.network.inner.served_hash();
    assert_eq!(world.network.followed.lock().unwrap().last(), Some(&old));

    // The operator pins a key the gateway does not serve: the client asks for it, the
    // transport refuses what the gateway serves, and the key in use stays.
    let new = [7; 32];
    world
        .dev
        .vault
        .set_ohttp_keys_hash(world.dev.operator, B256::from(new))
        .await
        .unwrap();
    client.sync().await.unwrap();
    assert_eq!(world.network.followed.lock().unwrap().last(), Some(&new));
    assert_eq!(
        world.network.inner.served_hash(),
        old,
        "a served key that does not hash to the pin is not taken"
    );
}
