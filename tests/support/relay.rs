//! A TCP relay a test can cut, stall and restore, to make a real server (Postgres) look dead
//! or unresponsive and then come back, without touching the server other tests use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Relays connections on a loopback port to a target while open.
pub struct Relay {
    /// Where it listens.
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    /// Relayed connections still open.
    live: Arc<AtomicUsize>,
}

impl Relay {
    /// Starts relaying to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let stalled = Arc::new(AtomicBool::new(false));
        let (cut, cuts) = watch::channel(0u64);
        let is_open = open.clone();
        let is_stalled = stalled.clone();
        let live = Arc::new(AtomicUsize::new(0));
        let counted = live.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_stalled.load(Ordering::SeqCst) {
                    tokio::spawn(hold(client, is_stalled.clone()));
                    continue;
                }
                if !is_open.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let stalled = is_stalled.clone();
                let mut cuts = cuts.clone();
                // Only cuts after this connection was made end it.
                cuts.borrow_and_update();
                counted.fetch_add(1, Ordering::SeqCst);
                let counted = counted.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cuts.changed() => {}
                        }
                    }
                    counted.fetch_sub(1, Ordering::SeqCst);
                    if stalled.load(Ordering::SeqCst) {
                        hold(client, stalled).await;
                    }
                });
            }
        });
        Relay {
            addr,
            open,
            stalled,
            cut,
            live,
        }
    }

    /// Stops relaying without closing anything: connections stay open and unanswered (a
    /// server that hangs, or a network that drops packets), new ones too, until `restore`.
    pub async fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
        self.cut().await;
        self.open.store(true, Ordering::SeqCst);
    }

    /// Closes every relayed connection and refuses new ones; returns once every relayed
    /// connection is closed, so nothing sent after it can reach the server.
    pub async fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
        for _ in 0..1000 {
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("relayed connections did not close within 5 s of the cut");
    }

    /// Relays new connections again (stalled ones are closed).
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.stalled.store(false, Ordering::SeqCst);
    }
}

/// Keeps `client` open without reading or writing while `stalled`, then closes it.
async fn hold(client: TcpStream, stalled: Arc<AtomicBool>) {
    while stalled.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(client);
}
