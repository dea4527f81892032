//! A TCP proxy on loopback whose connections a test can freeze: a frozen connection stays open and no byte moves
//! on it either way (a stalled path: a dead NAT mapping, a stuck middlebox), while connections opened after the
//! freeze work; thawed, everything a frozen connection held goes on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct FreezableProxy {
    pub port: u16,
    target: Arc<OnceLock<SocketAddr>>,
    /// Connections are numbered from 1 as they are accepted; those numbered below this are frozen (0: none).
    frozen_below: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
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
        let (frozen_below, _) = watch::channel(0);
        let accepted = Arc::new(AtomicU64::new(0));
        let accept = tokio::spawn(accept_loop(
            listener,
            target.clone(),
            frozen_below.clone(),
            accepted.clone(),
        ));
        FreezableProxy {
            port,
            target,
            frozen_below,
            accepted,
            accept,
        }
    }

    pub fn set_target(&self, target: SocketAddr) {
        self.target.set(target).expect("the target is set once");
    }

    /// Freezes every connection open now.
    pub fn freeze(&self) {
        self.frozen_below
            .send_replace(self.accepted.load(Ordering::SeqCst) + 1);
    }

    pub fn thaw(&self) {
        self.frozen_below.send_replace(0);
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
    frozen_below: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
) {
    while let Ok((client, _)) = listener.accept().await {
        let id = accepted.fetch_add(1, Ordering::SeqCst) + 1;
        let Some(target) = target.get().copied() else {
            continue;
        };
        let frozen_below = frozen_below.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pump(
                id,
                client_read,
                server_write,
                frozen_below.subscribe(),
            ));
            tokio::spawn(pump(
                id,
                server_read,
                client_write,
                frozen_below.subscribe(),
            ));
        });
    }
}

/// Copies one direction of connection `id`, never moving a byte while it is frozen; an end or an error closes
/// the other side's write.
async fn pump(
    id: u64,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen_below: watch::Receiver<u64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if frozen_below.wait_for(|below| id >= *below).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if frozen_below.wait_for(|below| id >= *below).await.is_err()
            || to.write_all(&buf[..n]).await.is_err()
        {
            break;
        }
    }
    let _ = to.shutdown().await;
}
