//! A TCP proxy on loopback that a test can freeze: while frozen, every connection stays open and no byte moves
//! either way (what a stalled network does), and new connections wait too; thawed, everything held goes on.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct FreezableProxy {
    pub port: u16,
    target: Arc<OnceLock<SocketAddr>>,
    frozen: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl FreezableProxy {
    /// Listens on a free loopback port; connections are forwarded once [`FreezableProxy::set_target`] was called.
    pub async fn start() -> FreezableProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let target = Arc::new(OnceLock::new());
        let (frozen, _) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, target.clone(), frozen.clone()));
        FreezableProxy {
            port,
            target,
            frozen,
            accept,
        }
    }

    pub fn set_target(&self, target: SocketAddr) {
        self.target.set(target).expect("the target is set once");
    }

    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: Arc<OnceLock<SocketAddr>>,
    frozen: watch::Sender<bool>,
) {
    while let Ok((client, _)) = listener.accept().await {
        let target = target.clone();
        let mut gate = frozen.subscribe();
        let frozen = frozen.clone();
        tokio::spawn(async move {
            let _ = gate.wait_for(|f| !f).await;
            let Some(target) = target.get().copied() else {
                return;
            };
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pump(client_read, server_write, frozen.subscribe()));
            tokio::spawn(pump(server_read, client_write, frozen.subscribe()));
        });
    }
}

/// Copies one direction, never moving a byte while frozen; an end or an error closes the other side's write.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut gate: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if gate.wait_for(|f| !f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if gate.wait_for(|f| !f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
