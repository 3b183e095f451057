//! [`ChaosProxy`]: a loopback TCP proxy in front of any backend that can
//! refuse connections, reset them mid-response, drip the answers slowly,
//! delay every answer or hold everything (a hang) — faults the fakes cannot express themselves,
//! and the same faults for real etcd.
//!
//! It works below the protocol, so it is faithful for every client: a reset
//! arrives as a TCP RST after part of an answer, exactly what a crashed
//! load balancer or a dropped NAT entry produces.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

/// What the proxy does with traffic, switchable at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyMode {
    /// Forward both ways.
    Pass,
    /// The port is closed: new connections are refused and open ones are
    /// reset.
    Refuse,
    /// Requests pass; the next chunk of every answer is cut in half and the
    /// connection is reset (RST) after it — on open connections and on
    /// every new one while the mode holds.
    ResetMidResponse,
    /// Answers trickle through one byte per `interval`.
    SlowDrip {
        /// Time between two bytes.
        interval: Duration,
    },
    /// Connections are accepted but nothing is forwarded either way.
    Blackhole,
    /// Answers pass, each chunk held back `delay` after it was read: a
    /// slow but live backend (an answer that fits one read — a probe's, a
    /// small blocking query's — arrives exactly `delay` late).
    Latency {
        /// How long each answer chunk is held.
        delay: Duration,
    },
}

#[derive(Default)]
struct Tasks {
    accept: Option<JoinHandle<()>>,
    connections: Vec<AbortHandle>,
}

/// A loopback TCP proxy to one upstream address. Dropping it closes the
/// port and every connection.
pub struct ChaosProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    mode: Arc<watch::Sender<ProxyMode>>,
    /// Set: the next answer chunk on any connection is cut and reset.
    reset_next: Arc<AtomicBool>,
    tasks: Arc<Mutex<Tasks>>,
}

impl std::fmt::Debug for ChaosProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("mode", &*self.mode.borrow())
            .finish()
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Listening on the same port again after `Refuse`.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl ChaosProxy {
    /// Starts a proxy on an ephemeral loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(ProxyMode::Pass);
        let proxy = Self {
            addr,
            upstream,
            mode: Arc::new(mode),
            reset_next: Arc::new(AtomicBool::new(false)),
            tasks: Arc::new(Mutex::new(Tasks::default())),
        };
        proxy.listen(listener);
        Ok(proxy)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn listen(&self, listener: TcpListener) {
        let (mode, upstream, tasks) = (self.mode.clone(), self.upstream, self.tasks.clone());
        let reset_next = self.reset_next.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let conn = tokio::spawn(connection(
                    client,
                    upstream,
                    mode.subscribe(),
                    reset_next.clone(),
                ));
                let mut t = tasks.lock().unwrap_or_else(PoisonError::into_inner);
                t.connections.retain(|c| !c.is_finished());
                t.connections.push(conn.abort_handle());
            }
        });
        self.tasks().accept = Some(accept);
    }

    /// Cuts the next answer chunk on whichever connection carries it and
    /// resets that connection, once (a single transient reset).
    pub fn reset_next_answer(&self) {
        self.reset_next.store(true, Ordering::SeqCst);
    }

    /// Switches the mode. `Refuse` closes the port and resets every open
    /// connection; leaving it listens on the same port again.
    pub fn set_mode(&self, mode: ProxyMode) -> std::io::Result<()> {
        self.mode.send_replace(mode);
        let mut tasks = self.tasks();
        if mode == ProxyMode::Refuse {
            if let Some(accept) = tasks.accept.take() {
                accept.abort();
            }
            for c in tasks.connections.drain(..) {
                c.abort();
            }
            return Ok(());
        }
        if tasks.accept.is_none() {
            drop(tasks);
            let listener = bind(self.addr)?;
            self.listen(listener);
        }
        Ok(())
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        let mut tasks = self.tasks();
        if let Some(accept) = tasks.accept.take() {
            accept.abort();
        }
        for c in tasks.connections.drain(..) {
            c.abort();
        }
    }
}

/// Resets a connection: `SO_LINGER 0` turns the close into an RST.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mode: watch::Receiver<ProxyMode>,
    reset_next: Arc<AtomicBool>,
) {
    let _ = client.set_nodelay(true);
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(_) => {
            reset(&client);
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let (client, server) = (Arc::new(client), Arc::new(server));
    let up = pump(client.clone(), server.clone(), mode.clone(), None);
    let down = pump(server.clone(), client.clone(), mode, Some(reset_next));
    // Whichever direction ends first ends the connection (both sockets close
    // when the last `Arc` goes).
    let reset_client = tokio::select! {
        r = up => r,
        r = down => r,
    };
    if reset_client {
        reset(&client);
        reset(&server);
    }
}

/// Forwards `from` → `to`; `reset_next` is given for the server-to-client
/// direction, where resets and drips apply. Returns whether to end with a
/// reset.
async fn pump(
    from: Arc<TcpStream>,
    to: Arc<TcpStream>,
    mut mode: watch::Receiver<ProxyMode>,
    reset_next: Option<Arc<AtomicBool>>,
) -> bool {
    let answers = reset_next.is_some();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let current = *mode.borrow_and_update();
        match current {
            ProxyMode::Refuse => return true,
            ProxyMode::Blackhole => {
                if mode.changed().await.is_err() {
                    return true;
                }
                continue;
            }
            _ => {}
        }
        tokio::select! {
            changed = mode.changed() => {
                if changed.is_err() {
                    return true;
                }
                continue;
            }
            ready = from.readable() => {
                if ready.is_err() {
                    return true;
                }
            }
        }
        let n = match from.try_read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return true,
        };
        let chunk = &buf[..n];
        let mut current = *mode.borrow();
        if reset_next
            .as_ref()
            .is_some_and(|r| r.swap(false, Ordering::SeqCst))
        {
            current = ProxyMode::ResetMidResponse;
        }
        let result = match (answers, current) {
            (true, ProxyMode::ResetMidResponse) => {
                let _ = write_all(&to, &chunk[..n.div_ceil(2)]).await;
                return true;
            }
            (true, ProxyMode::SlowDrip { interval }) => drip(&to, chunk, interval, &mut mode).await,
            (true, ProxyMode::Latency { delay }) => {
                tokio::time::sleep(delay).await;
                write_all(&to, chunk).await
            }
            _ => write_all(&to, chunk).await,
        };
        if result.is_err() {
            return true;
        }
    }
}

async fn drip(
    to: &TcpStream,
    chunk: &[u8],
    interval: Duration,
    mode: &mut watch::Receiver<ProxyMode>,
) -> std::io::Result<()> {
    for (i, byte) in chunk.iter().enumerate() {
        if !matches!(*mode.borrow(), ProxyMode::SlowDrip { .. }) {
            return write_all(to, &chunk[i..]).await;
        }
        write_all(to, std::slice::from_ref(byte)).await?;
        tokio::time::sleep(interval).await;
    }
    Ok(())
}

async fn write_all(to: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        to.writable().await?;
        match to.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that answers every connection with `answer` after
    /// reading a request line, then closes.
    async fn upstream(answer: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // Read the whole request line first: closing with
                    // unread input would send a reset of its own.
                    let mut buf = [0u8; 64];
                    let mut got = 0;
                    while !buf[..got].contains(&b'\n') && got < buf.len() {
                        if s.readable().await.is_err() {
                            return;
                        }
                        match s.try_read(&mut buf[got..]) {
                            Ok(0) => return,
                            Ok(n) => got += n,
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(_) => return,
                        }
                    }
                    let _ = write_all(&s, answer).await;
                });
            }
        });
        addr
    }

    /// Sends one line through the proxy; returns what came back and
    /// whether the connection ended with an error (a reset).
    async fn ask(addr: SocketAddr) -> std::io::Result<(Vec<u8>, bool)> {
        let s = TcpStream::connect(addr).await?;
        write_all(&s, b"hello\n").await?;
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            s.readable().await?;
            match s.try_read(&mut buf) {
                Ok(0) => return Ok((out, false)),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Ok((out, true)),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_resets_mid_answer_and_refuses() {
        let answer: &[u8] = b"0123456789abcdefghij";
        let proxy = ChaosProxy::start(upstream(answer).await)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (got, reset) = ask(proxy.addr()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((got.as_slice(), reset), (answer, false));

        proxy
            .set_mode(ProxyMode::ResetMidResponse)
            .unwrap_or_else(|e| panic!("{e}"));
        let (got, reset) = ask(proxy.addr()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.as_slice(), &answer[..10], "half an answer");
        assert!(reset, "the connection ends with a reset");

        proxy
            .set_mode(ProxyMode::Pass)
            .unwrap_or_else(|e| panic!("{e}"));
        proxy.reset_next_answer();
        let (got, reset) = ask(proxy.addr()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((got.as_slice(), reset), (&answer[..10], true), "once");
        let (got, reset) = ask(proxy.addr()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((got.as_slice(), reset), (answer, false), "only once");

        proxy
            .set_mode(ProxyMode::Refuse)
            .unwrap_or_else(|e| panic!("{e}"));
        // The listener closes when its aborted task is dropped, which the
        // runtime does a moment later.
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(proxy.addr()).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "the port is closed");

        proxy
            .set_mode(ProxyMode::Pass)
            .unwrap_or_else(|e| panic!("{e}"));
        let (got, _) = ask(proxy.addr()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.as_slice(), answer, "listening on the same port again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drips_one_byte_per_interval() {
        let answer: &[u8] = b"abcdef";
        let proxy = ChaosProxy::start(upstream(answer).await)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        proxy
            .set_mode(ProxyMode::SlowDrip {
                interval: Duration::from_millis(50),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let started = std::time::Instant::now();
        let (got, _) = ask(proxy.addr()).await.unwrap_or_else(|e| panic!("{e}"));
        let took = started.elapsed();
        assert_eq!(got.as_slice(), answer);
        assert!(took >= Duration::from_millis(250), "{took:?}");
    }
}
