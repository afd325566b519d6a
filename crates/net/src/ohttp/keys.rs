//! The gateway's OHTTP keys: the current one, and retired ones still honoured for their
//! max-age after a rotation.

use std::time::{Duration, Instant};

use ohttp::{
    KeyConfig, Server, ServerResponse, SymmetricSuite,
    hpke::{Aead, Kdf, Kem},
};
use sha2::{Digest, Sha256};

use crate::{HttpResponse, NetError};

/// The key configurations a gateway decapsulates with.
///
/// Only the current key is served; a rotated-out key keeps decapsulating for `max_age`, the
/// time a client may have cached the old configuration (PROTOCOL §2: a rotation is published
/// on chain, through `ohttpKeysHash`, before the gateway uses the new key).
pub struct KeyRing {
    current: Key,
    retired: Vec<(Key, Instant)>,
    max_age: Duration,
}

struct Key {
    id: u8,
    server: Server,
}

impl KeyRing {
    /// A fresh random key with id `key_id`.
    pub fn generate(key_id: u8, max_age: Duration) -> Result<Self, NetError> {
        ohttp::init();
        let config = KeyConfig::new(key_id, Kem::X25519Sha256, suites())?;
        Self::with_config(key_id, config, max_age)
    }

    /// A key derived from input keying material (reproducible keys for tests and benches).
    pub fn derive(key_id: u8, ikm: &[u8], max_age: Duration) -> Result<Self, NetError> {
        ohttp::init();
        let config = KeyConfig::derive(key_id, Kem::X25519Sha256, suites(), ikm)?;
        Self::with_config(key_id, config, max_age)
    }

    fn with_config(id: u8, config: KeyConfig, max_age: Duration) -> Result<Self, NetError> {
        Ok(Self {
            current: Key {
                id,
                server: Server::new(config)?,
            },
            retired: Vec::new(),
            max_age,
        })
    }

    /// Makes `next`'s key current; the previous one decapsulates until `now + max_age`.
    pub fn rotate(&mut self, next: KeyRing, now: Instant) {
        let previous = std::mem::replace(&mut self.current, next.current);
        self.retired.retain(|(_, until)| *until > now);
        self.retired.push((previous, now + self.max_age));
    }

    /// How long clients may cache the served configuration.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The `application/ohttp-keys` body: the current configuration.
    pub fn served_body(&self) -> Result<Vec<u8>, NetError> {
        Ok(KeyConfig::encode_list(&[self.current.server.config()])?)
    }

    /// SHA-256 of exactly the served body: the value of `ohttpKeysHash` (PROTOCOL §11).
    pub fn served_hash(&self) -> Result<[u8; 32], NetError> {
        Ok(Sha256::digest(self.served_body()?).into())
    }

    /// Opens an encapsulated request with the key its first byte names: the inner Binary
    /// HTTP bytes, and the sealer for the answer.
    pub fn open(
        &self,
        message: &[u8],
        now: Instant,
    ) -> Result<(Vec<u8>, ResponseSealer), NetError> {
        let (inner, sealer) = self.decapsulate(message, now)?;
        Ok((inner, ResponseSealer(sealer)))
    }

    fn decapsulate(
        &self,
        message: &[u8],
        now: Instant,
    ) -> Result<(Vec<u8>, ServerResponse), NetError> {
        let key_id = *message
            .first()
            .ok_or(NetError::Ohttp("empty message".into()))?;
        let key = std::iter::once(&self.current)
            .chain(
                self.retired
                    .iter()
                    .filter(|(_, until)| *until > now)
                    .map(|(key, _)| key),
            )
            .find(|key| key.id == key_id)
            .ok_or(NetError::UnknownKeyId(key_id))?;
        Ok(key.server.decapsulate(message)?)
    }
}

/// Seals the answer to one opened request (single use).
pub struct ResponseSealer(ServerResponse);

impl ResponseSealer {
    /// Encapsulates `response` for the client that sent the request.
    pub fn seal(self, response: &HttpResponse) -> Result<Vec<u8>, NetError> {
        Ok(self.0.encapsulate(&response.to_bhttp()?)?)
    }
}

fn suites() -> Vec<SymmetricSuite> {
    vec![
        SymmetricSuite::new(Kdf::HkdfSha256, Aead::Aes128Gcm),
        SymmetricSuite::new(Kdf::HkdfSha256, Aead::ChaCha20Poly1305),
    ]
}
