//! The wallet file encrypted at rest: argon2id derives a key from the passphrase and the
//! wallet's salt once, when the wallet is created or opened; XChaCha20-Poly1305 seals each
//! write of `wallet.json` (and its backup) under a fresh random nonce.
//!
//! ```json
//! { "version": 1,
//!   "sealed": { "kdf": "argon2id", "memory_kib": 65536, "iterations": 3, "parallelism": 1,
//!               "salt": "<16 bytes hex>", "aead": "xchacha20poly1305",
//!               "nonce": "<24 bytes hex>", "ciphertext": "<hex>" } }
//! ```
//!
//! The plaintext is the unencrypted `wallet.json` (see [`super`]). The KDF parameters are
//! bound to the ciphertext as associated data, so that a file edited to weaker parameters
//! does not decrypt.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A wallet passphrase, wiped from memory when dropped; never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase. An empty one is refused by [`Wallet::create_sealed`](super::Wallet).
    pub fn new(passphrase: String) -> Self {
        Self(Zeroizing::new(passphrase))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl core::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

/// The argon2id cost of new wallets: 64 MiB, three passes, one lane (about half a second on
/// a laptop core, once per open).
const MEMORY_KIB: u32 = 64 * 1024;
const ITERATIONS: u32 = 3;
const PARALLELISM: u32 = 1;
/// The most a file may ask for, so that a crafted file cannot make `open` take gigabytes.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;

/// The key a wallet is sealed under, with the salt and parameters it was derived with.
pub(crate) struct SealingKey {
    key: Zeroizing<[u8; 32]>,
    kdf: Kdf,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    #[serde(with = "hex::serde")]
    salt: [u8; 16],
}

impl Kdf {
    fn associated_data(&self) -> Vec<u8> {
        let mut out = b"nullgate wallet v1 argon2id xchacha20poly1305".to_vec();
        for value in [self.memory_kib, self.iterations, self.parallelism] {
            out.extend_from_slice(&value.to_be_bytes());
        }
        out.extend_from_slice(&self.salt);
        out
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    version: u32,
    sealed: Sealed,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    kdf: String,
    #[serde(flatten)]
    params: Kdf,
    aead: String,
    #[serde(with = "hex::serde")]
    nonce: [u8; 24],
    #[serde(with = "hex::serde")]
    ciphertext: Vec<u8>,
}

impl SealingKey {
    /// A key for a new wallet: a fresh random salt, the default cost.
    pub(crate) fn new(passphrase: &Passphrase) -> Result<Self, String> {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        derive(
            passphrase,
            Kdf {
                memory_kib: MEMORY_KIB,
                iterations: ITERATIONS,
                parallelism: PARALLELISM,
                salt,
            },
        )
    }

    /// Seals a plaintext wallet file.
    pub(crate) fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(self.key.as_ref().into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &self.kdf.associated_data(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any wallet-sized message");
        serde_json::to_vec_pretty(&Envelope {
            version: 1,
            sealed: Sealed {
                kdf: "argon2id".into(),
                params: self.kdf,
                aead: "xchacha20poly1305".into(),
                nonce,
                ciphertext,
            },
        })
        .expect("an envelope always serialises")
    }
}

/// What reading a possibly sealed file gave.
pub(crate) enum Unsealed {
    /// Not sealed: the bytes are the plaintext file.
    Plain,
    /// Sealed, and opened with the key (derived now if `key` was `None` or had another
    /// salt).
    Opened(Zeroizing<Vec<u8>>, SealingKey),
    /// Sealed, but the passphrase does not open it (wrong passphrase, or a damaged file).
    WrongKey,
    /// Sealed, and no passphrase was given.
    NeedPassphrase,
    /// Looks sealed but the envelope is broken.
    Corrupt(String),
}

/// Opens `bytes` if they are a sealed wallet file, reusing `key` when its salt matches.
pub(crate) fn unseal(
    bytes: &[u8],
    passphrase: Option<&Passphrase>,
    key: Option<&SealingKey>,
) -> Unsealed {
    if !looks_sealed(bytes) {
        return Unsealed::Plain;
    }
    let envelope: Envelope = match serde_json::from_slice(bytes) {
        Ok(envelope) => envelope,
        Err(error) => {
            return Unsealed::Corrupt(format!(
                "a broken sealed file: {}",
                super::file::json_error_text(&error)
            ));
        }
    };
    let sealed = envelope.sealed;
    if envelope.version != 1 || sealed.kdf != "argon2id" || sealed.aead != "xchacha20poly1305" {
        return Unsealed::Corrupt("sealed with an unknown scheme".into());
    }
    let derived;
    let key = match key {
        Some(key) if key.kdf == sealed.params => key,
        _ => {
            let Some(passphrase) = passphrase else {
                return Unsealed::NeedPassphrase;
            };
            derived = match derive(passphrase, sealed.params) {
                Ok(key) => key,
                Err(problem) => return Unsealed::Corrupt(problem),
            };
            &derived
        }
    };
    let cipher = XChaCha20Poly1305::new(key.key.as_ref().into());
    match cipher.decrypt(
        XNonce::from_slice(&sealed.nonce),
        Payload {
            msg: &sealed.ciphertext,
            aad: &sealed.params.associated_data(),
        },
    ) {
        Ok(plaintext) => Unsealed::Opened(
            Zeroizing::new(plaintext),
            SealingKey {
                key: key.key.clone(),
                kdf: key.kdf,
            },
        ),
        Err(_) => Unsealed::WrongKey,
    }
}

/// Whether a file is a sealed envelope rather than a plaintext wallet (which has `notes`).
fn looks_sealed(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        sealed: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.sealed.is_some())
        || bytes.windows(9).any(|w| w == b"\"sealed\":")
}

fn derive(passphrase: &Passphrase, kdf: Kdf) -> Result<SealingKey, String> {
    if kdf.memory_kib > MAX_MEMORY_KIB || kdf.iterations > MAX_ITERATIONS || kdf.parallelism > 16 {
        return Err("its key derivation asks for more memory or time than a wallet needs".into());
    }
    let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| format!("its key derivation parameters are invalid ({e})"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.bytes(), &kdf.salt, key.as_mut())
        .map_err(|e| format!("key derivation failed ({e})"))?;
    Ok(SealingKey { key, kdf })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(passphrase: &str) -> SealingKey {
        derive(
            &Passphrase::new(passphrase.into()),
            Kdf {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
                salt: [7; 16],
            },
        )
        .unwrap()
    }

    #[test]
    fn a_sealed_file_opens_with_its_passphrase_only() {
        let key = cheap("correct horse");
        let plaintext = b"{\"secret\":\"zebra-secret\"}";
        let sealed = key.seal(plaintext);
        assert!(
            !sealed.windows(5).any(|w| w == b"zebra"),
            "the plaintext does not show"
        );
        let right = Passphrase::new("correct horse".into());
        match unseal(&sealed, Some(&right), None) {
            Unsealed::Opened(plain, _) => assert_eq!(&plain[..], plaintext),
            _ => panic!("the right passphrase opens it"),
        }
        let wrong = Passphrase::new("battery staple".into());
        assert!(matches!(
            unseal(&sealed, Some(&wrong), None),
            Unsealed::WrongKey
        ));
        assert!(matches!(
            unseal(&sealed, None, None),
            Unsealed::NeedPassphrase
        ));
        assert!(matches!(
            unseal(b"{\"version\":1,\"notes\":[]}", None, None),
            Unsealed::Plain
        ));
    }

    #[test]
    fn edited_parameters_or_ciphertext_do_not_open() {
        let key = cheap("pass");
        let sealed = String::from_utf8(key.seal(b"{}")).unwrap();
        let right = Passphrase::new("pass".into());
        // Weakened parameters: the associated data no longer matches.
        let weaker = sealed.replace("\"iterations\": 1", "\"iterations\": 2");
        assert!(matches!(
            unseal(weaker.as_bytes(), Some(&right), None),
            Unsealed::WrongKey
        ));
        // A flipped ciphertext byte.
        let at = sealed.find("\"ciphertext\": \"").unwrap() + 15;
        let mut bytes = sealed.into_bytes();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        assert!(matches!(
            unseal(&bytes, Some(&right), None),
            Unsealed::WrongKey
        ));
        // A parameter a file must not ask for.
        let greedy = String::from_utf8(cheap("pass").seal(b"{}"))
            .unwrap()
            .replace("\"memory_kib\": 64", "\"memory_kib\": 4194304");
        assert!(matches!(
            unseal(greedy.as_bytes(), Some(&right), None),
            Unsealed::Corrupt(_)
        ));
    }
}
