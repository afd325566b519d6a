//! A minimal SOCKS5 server on 127.0.0.1 (RFC 1928 CONNECT, RFC 1929 username/password) that
//! records the username and the target of every tunnel. Shared by the tests of every crate
//! that routes through SOCKS5 (included by path: it needs tokio only).

use std::sync::{Arc, Mutex};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// One tunnel as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tunnel {
    /// The SOCKS username the client gave.
    pub(crate) user: String,
    /// `host:port` as the client asked for it (a name stays a name: the proxy resolves it).
    pub(crate) target: String,
}

/// The tunnels opened so far, in order.
pub(crate) type Tunnels = Arc<Mutex<Vec<Tunnel>>>;

/// Starts the server; each tunnel opened through it is pushed onto `tunnels`.
pub(crate) async fn socks_server(tunnels: Tunnels) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let tunnels = tunnels.clone();
            tokio::spawn(async move {
                let _ = tunnel(client, tunnels).await;
            });
        }
    });
    address
}

async fn tunnel(mut client: TcpStream, tunnels: Tunnels) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    client.read_exact(&mut methods).await?;
    assert!(
        methods.contains(&2),
        "the client must offer username/password"
    );
    client.write_all(&[5, 2]).await?;
    let mut version = [0u8; 2];
    client.read_exact(&mut version).await?;
    let mut user = vec![0u8; version[1] as usize];
    client.read_exact(&mut user).await?;
    let mut length = [0u8; 1];
    client.read_exact(&mut length).await?;
    let mut password = vec![0u8; length[0] as usize];
    client.read_exact(&mut password).await?;
    client.write_all(&[1, 0]).await?;
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::IpAddr::from(ip).to_string()
        }
        3 => {
            let mut length = [0u8; 1];
            client.read_exact(&mut length).await?;
            let mut name = vec![0u8; length[0] as usize];
            client.read_exact(&mut name).await?;
            String::from_utf8(name).unwrap()
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    tunnels.lock().unwrap().push(Tunnel {
        user: String::from_utf8(user).unwrap(),
        target: format!("{host}:{port}"),
    });
    let mut upstream = TcpStream::connect((host.as_str(), port)).await?;
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
