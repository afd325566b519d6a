//! Authenticated links between mix nodes: Noise XX (`Noise_XX_25519_ChaChaPoly_BLAKE2s`,
//! `snow`) over any byte stream, with both static keys pinned, then fixed-size frames.
//!
//! Every frame on the wire has exactly the configured length whatever it carries, so a link
//! observer learns only how many frames passed, not their sizes (the Sphinx packets inside are
//! already of one size; this also hides the cover/real distinction at the link layer). A
//! frame's plaintext is a 2-byte length, the payload and zero padding; Noise's AEAD tag
//! authenticates it, and its per-direction nonce counter makes a replayed or reordered frame
//! fail to decrypt, which closes the link.
//!
//! Pinning: the initiator knows which node it dials (from the signed directory) and refuses a
//! responder with any other static key; the responder accepts only initiators whose static key
//! it is given (the nodes of the previous layer, or the registered clients' entry keys).
//!
//! Normative format: `docs/spec/MIXNET.md` §3.
//
// The handshake messages travel with a 2-byte big-endian length prefix; transport frames
// need none, their length being fixed for the link.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// The Noise protocol name of every link.
pub const NOISE_PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// The AEAD tag Noise appends to each frame.
const TAG_LEN: usize = 16;
/// The payload length prefix inside a frame.
const LEN_PREFIX: usize = 2;
/// Noise's maximum message length.
const NOISE_MAX: usize = 65_535;

/// Why a link could not be set up or a frame not be sent or received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The underlying stream failed or closed.
    #[error("link I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The Noise handshake or a frame's decryption failed: a bad peer, a tampered, replayed or
    /// reordered frame. The link is unusable afterwards.
    #[error("link Noise failure: {0}")]
    Noise(String),
    /// The peer proved a static key other than the one pinned for it.
    #[error("the peer's link key is not the pinned one")]
    UnexpectedPeer,
    /// A decrypted frame's length prefix points past its end.
    #[error("malformed link frame")]
    MalformedFrame,
    /// A payload does not fit in one frame, or the frame length is out of range.
    #[error("payload of {len} bytes does not fit a frame of {frame_len} bytes")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The link's frame length.
        frame_len: usize,
    },
    /// The other half of a split link panicked while holding the cipher state.
    #[error("link cipher state poisoned by a panic")]
    Poisoned,
}

impl From<snow::Error> for LinkError {
    fn from(error: snow::Error) -> Self {
        Self::Noise(error.to_string())
    }
}

/// A node's long-term link key pair (X25519, as Noise uses it).
pub struct LinkKeypair {
    secret: Vec<u8>,
    public: [u8; 32],
}

impl LinkKeypair {
    /// A fresh key pair from the operating system's randomness.
    pub fn generate() -> Result<Self, LinkError> {
        let keypair = snow::Builder::new(pattern()).generate_keypair()?;
        let public = keypair
            .public
            .as_slice()
            .try_into()
            .map_err(|_| LinkError::Noise("unexpected public key length".into()))?;
        Ok(Self {
            secret: keypair.private,
            public,
        })
    }

    /// The key pair with secret `secret` (for keys derived from a seed or read from a file).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret));
        Self {
            secret: secret.to_vec(),
            public: public.to_bytes(),
        }
    }

    /// The public half, as published in the directory.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }
}

impl std::fmt::Debug for LinkKeypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret half is never printed.
        f.debug_struct("LinkKeypair")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

/// An established link: encrypted, authenticated, fixed-size frames in both directions.
pub struct Link<S> {
    stream: S,
    noise: snow::TransportState,
    frame_len: usize,
    remote: [u8; 32],
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link<S> {
    /// Dials side: runs the handshake on `stream` and accepts only a responder proving
    /// `expected_remote`. `frame_len` is the length of every frame on the wire.
    pub async fn connect(
        mut stream: S,
        local: &LinkKeypair,
        expected_remote: &[u8; 32],
        frame_len: usize,
    ) -> Result<Self, LinkError> {
        check_frame_len(frame_len)?;
        let mut noise = snow::Builder::new(pattern())
            .local_private_key(&local.secret)?
            .build_initiator()?;
        let mut buf = vec![0u8; NOISE_MAX];
        // -> e
        let len = noise.write_message(&[], &mut buf)?;
        write_handshake(&mut stream, &buf[..len]).await?;
        // <- e, ee, s, es
        let msg = read_handshake(&mut stream).await?;
        noise.read_message(&msg, &mut buf)?;
        let remote = remote_key(noise.get_remote_static())?;
        if &remote != expected_remote {
            return Err(LinkError::UnexpectedPeer);
        }
        // -> s, se
        let len = noise.write_message(&[], &mut buf)?;
        write_handshake(&mut stream, &buf[..len]).await?;
        Ok(Self {
            stream,
            noise: noise.into_transport_mode()?,
            frame_len,
            remote,
        })
    }

    /// Listening side: runs the handshake on `stream` and accepts only an initiator whose
    /// static key `allowed` approves.
    pub async fn accept(
        mut stream: S,
        local: &LinkKeypair,
        allowed: impl Fn(&[u8; 32]) -> bool,
        frame_len: usize,
    ) -> Result<Self, LinkError> {
        check_frame_len(frame_len)?;
        let mut noise = snow::Builder::new(pattern())
            .local_private_key(&local.secret)?
            .build_responder()?;
        let mut buf = vec![0u8; NOISE_MAX];
        let msg = read_handshake(&mut stream).await?;
        noise.read_message(&msg, &mut buf)?;
        let len = noise.write_message(&[], &mut buf)?;
        write_handshake(&mut stream, &buf[..len]).await?;
        let msg = read_handshake(&mut stream).await?;
        noise.read_message(&msg, &mut buf)?;
        let remote = remote_key(noise.get_remote_static())?;
        if !allowed(&remote) {
            return Err(LinkError::UnexpectedPeer);
        }
        Ok(Self {
            stream,
            noise: noise.into_transport_mode()?,
            frame_len,
            remote,
        })
    }

    /// The largest payload one frame carries.
    pub fn max_payload(&self) -> usize {
        self.frame_len - TAG_LEN - LEN_PREFIX
    }

    /// The peer's proven static link key.
    pub fn remote_key(&self) -> [u8; 32] {
        self.remote
    }

    /// Sends `payload` as one frame of exactly the link's frame length.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), LinkError> {
        let frame = seal_frame(&mut self.noise, self.frame_len, payload)?;
        self.stream.write_all(&frame).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Receives one frame and returns its payload.
    pub async fn recv(&mut self) -> Result<Vec<u8>, LinkError> {
        let mut frame = vec![0u8; self.frame_len];
        self.stream.read_exact(&mut frame).await?;
        open_frame(&mut self.noise, &frame)
    }

    /// Splits the link so that one task can receive while another sends (a node writes
    /// replies down a client's link while reading its packets).
    pub fn into_split(self) -> (LinkReader<S>, LinkWriter<S>) {
        let (read, write) = tokio::io::split(self.stream);
        let noise = Arc::new(Mutex::new(self.noise));
        (
            LinkReader {
                stream: read,
                noise: Arc::clone(&noise),
                frame_len: self.frame_len,
            },
            LinkWriter {
                stream: write,
                noise,
                frame_len: self.frame_len,
            },
        )
    }
}

/// The receiving half of a split [`Link`].
pub struct LinkReader<S> {
    stream: ReadHalf<S>,
    noise: Arc<Mutex<snow::TransportState>>,
    frame_len: usize,
}

impl<S: AsyncRead + AsyncWrite> LinkReader<S> {
    /// Receives one frame and returns its payload.
    pub async fn recv(&mut self) -> Result<Vec<u8>, LinkError> {
        let mut frame = vec![0u8; self.frame_len];
        self.stream.read_exact(&mut frame).await?;
        let mut noise = self.noise.lock().map_err(|_| LinkError::Poisoned)?;
        open_frame(&mut noise, &frame)
    }
}

/// The sending half of a split [`Link`].
pub struct LinkWriter<S> {
    stream: WriteHalf<S>,
    noise: Arc<Mutex<snow::TransportState>>,
    frame_len: usize,
}

impl<S: AsyncRead + AsyncWrite> LinkWriter<S> {
    /// Sends `payload` as one frame of exactly the link's frame length.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), LinkError> {
        let frame = {
            let mut noise = self.noise.lock().map_err(|_| LinkError::Poisoned)?;
            seal_frame(&mut noise, self.frame_len, payload)?
        };
        self.stream.write_all(&frame).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The largest payload one frame carries.
    pub fn max_payload(&self) -> usize {
        self.frame_len - TAG_LEN - LEN_PREFIX
    }
}

/// Pads `payload` into one frame of `frame_len` bytes and encrypts it.
fn seal_frame(
    noise: &mut snow::TransportState,
    frame_len: usize,
    payload: &[u8],
) -> Result<Vec<u8>, LinkError> {
    let too_large = || LinkError::TooLarge {
        len: payload.len(),
        frame_len,
    };
    if payload.len() > frame_len - TAG_LEN - LEN_PREFIX {
        return Err(too_large());
    }
    let mut plain = vec![0u8; frame_len - TAG_LEN];
    let len = u16::try_from(payload.len()).map_err(|_| too_large())?;
    plain[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
    plain[LEN_PREFIX..LEN_PREFIX + payload.len()].copy_from_slice(payload);
    let mut frame = vec![0u8; frame_len];
    let written = noise.write_message(&plain, &mut frame)?;
    debug_assert_eq!(written, frame_len);
    frame.truncate(written);
    Ok(frame)
}

/// Decrypts one frame and returns the payload inside.
fn open_frame(noise: &mut snow::TransportState, frame: &[u8]) -> Result<Vec<u8>, LinkError> {
    let mut plain = vec![0u8; frame.len()];
    let len = noise.read_message(frame, &mut plain)?;
    let plain = &plain[..len];
    let prefix = plain.get(..LEN_PREFIX).ok_or(LinkError::MalformedFrame)?;
    let declared = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
    plain
        .get(LEN_PREFIX..LEN_PREFIX + declared)
        .map(<[u8]>::to_vec)
        .ok_or(LinkError::MalformedFrame)
}

fn pattern() -> snow::params::NoiseParams {
    NOISE_PATTERN
        .parse()
        .expect("NOISE_PATTERN is a valid Noise protocol name")
}

fn check_frame_len(frame_len: usize) -> Result<(), LinkError> {
    if !(TAG_LEN + LEN_PREFIX + 1..=NOISE_MAX).contains(&frame_len) {
        return Err(LinkError::TooLarge { len: 0, frame_len });
    }
    Ok(())
}

fn remote_key(key: Option<&[u8]>) -> Result<[u8; 32], LinkError> {
    key.and_then(|key| key.try_into().ok())
        .ok_or_else(|| LinkError::Noise("peer sent no static key".into()))
}

async fn write_handshake<S: AsyncWrite + Unpin>(
    stream: &mut S,
    message: &[u8],
) -> Result<(), LinkError> {
    let len = u16::try_from(message.len()).map_err(|_| LinkError::TooLarge {
        len: message.len(),
        frame_len: NOISE_MAX,
    })?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(message).await?;
    stream.flush().await?;
    Ok(())
}

async fn read_handshake<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, LinkError> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const FRAME: usize = 2_048;

    async fn pair(
        server_key: LinkKeypair,
        client_key: LinkKeypair,
        pinned: [u8; 32],
        allowed: [u8; 32],
    ) -> (
        Result<Link<TcpStream>, LinkError>,
        Result<Link<TcpStream>, LinkError>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            Link::accept(stream, &server_key, |key| *key == allowed, FRAME).await
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let client = Link::connect(stream, &client_key, &pinned, FRAME).await;
        (client, server.await.unwrap())
    }

    #[tokio::test]
    async fn frames_are_fixed_size_and_authenticated_both_ways() {
        tokio::time::timeout(Duration::from_secs(20), async {
            let server_key = LinkKeypair::generate().unwrap();
            let client_key = LinkKeypair::generate().unwrap();
            let (pinned, allowed) = (server_key.public(), client_key.public());
            let (client, server) = pair(server_key, client_key, pinned, allowed).await;
            let (mut client, mut server) = (client.unwrap(), server.unwrap());
            assert_eq!(client.remote_key(), pinned);
            assert_eq!(server.remote_key(), allowed);
            for payload in [
                &b""[..],
                b"a sphinx packet",
                &vec![7u8; client.max_payload()],
            ] {
                client.send(payload).await.unwrap();
                assert_eq!(server.recv().await.unwrap(), payload);
                server.send(payload).await.unwrap();
                assert_eq!(client.recv().await.unwrap(), payload);
            }
            let too_large = vec![0u8; client.max_payload() + 1];
            assert!(matches!(
                client.send(&too_large).await,
                Err(LinkError::TooLarge { .. })
            ));
        })
        .await
        .expect("bounded in time");
    }

    #[tokio::test]
    async fn unpinned_peers_are_refused_on_both_sides() {
        tokio::time::timeout(Duration::from_secs(20), async {
            // The client pins a key the server does not hold.
            let server_key = LinkKeypair::generate().unwrap();
            let client_key = LinkKeypair::generate().unwrap();
            let stranger = LinkKeypair::generate().unwrap().public();
            let allowed = client_key.public();
            let (client, _server) = pair(server_key, client_key, stranger, allowed).await;
            assert!(matches!(client, Err(LinkError::UnexpectedPeer)));

            // The server does not know the client's key.
            let server_key = LinkKeypair::generate().unwrap();
            let client_key = LinkKeypair::generate().unwrap();
            let pinned = server_key.public();
            let (_client, server) = pair(server_key, client_key, pinned, stranger).await;
            assert!(matches!(server, Err(LinkError::UnexpectedPeer)));
        })
        .await
        .expect("bounded in time");
    }

    #[tokio::test]
    async fn a_tampered_frame_breaks_the_link_without_panic() {
        tokio::time::timeout(Duration::from_secs(20), async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server_key = LinkKeypair::generate().unwrap();
            let client_key = LinkKeypair::generate().unwrap();
            let (pinned, allowed) = (server_key.public(), client_key.public());
            let server = tokio::spawn(async move {
                let (stream, _) = listener.accept().await.unwrap();
                let mut link = Link::accept(stream, &server_key, |key| *key == allowed, FRAME)
                    .await
                    .unwrap();
                (link.recv().await, link.recv().await)
            });
            let stream = TcpStream::connect(addr).await.unwrap();
            let mut client = Link::connect(stream, &client_key, &pinned, FRAME)
                .await
                .unwrap();
            client.send(b"first").await.unwrap();
            // A frame of garbage (an on-path attacker's) fails authentication.
            client.stream.write_all(&vec![0x5a; FRAME]).await.unwrap();
            let (first, second) = server.await.unwrap();
            assert_eq!(first.unwrap(), b"first");
            assert!(matches!(second, Err(LinkError::Noise(_))));
        })
        .await
        .expect("bounded in time");
    }
}
