//! Running the built binary.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_provisioning");

/// How a run ended.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) took: Duration,
}

impl Run {
    /// The stderr lines.
    pub(crate) fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// The only stderr line, which must be an `error[CODE]: ...` line.
    pub(crate) fn error_line(&self) -> &str {
        let lines = self.stderr_lines();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line, got {:?}",
            self.stderr
        );
        assert!(lines[0].starts_with("error["), "{:?}", lines[0]);
        lines[0]
    }
}

/// A temporary directory with a store path in it.
pub(crate) struct Sandbox {
    pub(crate) dir: tempfile::TempDir,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `providers.jsonl` in the sandbox.
    pub(crate) fn store(&self) -> PathBuf {
        self.dir.path().join("providers.jsonl")
    }

    /// Writes the store.
    pub(crate) fn write_store(&self, text: &str) {
        std::fs::write(self.store(), text).expect("write store");
    }

    /// A file in the sandbox.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The command with `--store` pointing into the sandbox and a clean
    /// environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        command_in(self.dir.path(), args)
    }

    /// Runs to the end (killed after `limit`).
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        run_with_limit(self.command(args), Duration::from_secs(60))
    }
}

/// The binary with the sandbox's store and no inherited settings.
pub(crate) fn command_in(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("PROVISIONING_STORE")
        .env_remove("PROVISIONING_POLICY")
        .env_remove("RUST_LOG")
        .arg("--store")
        .arg(dir.join("providers.jsonl"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to the end; kills it after `limit`.
pub(crate) fn run_with_limit(mut cmd: Command, limit: Duration) -> Run {
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn provisioning");
    finish(child, started, limit)
}

/// Waits for a spawned child (killed after `limit`) and collects its output.
pub(crate) fn finish(mut child: Child, started: Instant, limit: Duration) -> Run {
    // A caller that reads stdout itself has taken it already.
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = std::thread::spawn(move || read_all(stdout));
    let err = std::thread::spawn(move || read_all(stderr));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        took: started.elapsed(),
    }
}

fn read_all(pipe: Option<impl Read>) -> String {
    let mut s = String::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_string(&mut s);
    }
    s
}

/// Sends `signal` (`TERM`, `INT`, `HUP`) to a child through kill(1).
pub(crate) fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill(1)");
    assert!(status.success(), "kill -{signal} failed");
}

/// A TCP port on loopback that nothing listens on.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The store line of an in-memory provider with one member
/// `n1 127.0.0.1:4000`.
pub(crate) const LOCAL_N1: &str = r#"{"id":"local","kind":"in_memory","priority":0,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#;

/// A consul descriptor line pointing at `port` on loopback.
pub(crate) fn consul_line(port: u16) -> String {
    format!(
        r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["http://127.0.0.1:{port}"],"watch":{{"service":"app"}},"enabled":true}}"#
    )
}

/// Takes the store's lock in `sb` exactly as the store does (an exclusive
/// `flock` on `providers.jsonl.lock`, through `File::lock`), as another
/// process would, and holds it for `held`. Returns when the lock is taken,
/// with the moment it was and the holder to join.
pub(crate) fn hold_store_lock(
    sb: &Sandbox,
    held: Duration,
) -> (Instant, std::thread::JoinHandle<()>) {
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let lock_path = sb.path("providers.jsonl.lock");
    let holder = std::thread::spawn(move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .expect("lock file");
        file.lock().expect("flock");
        let _ = locked_tx.send(Instant::now());
        std::thread::sleep(held);
        drop(file);
    });
    let locked_at = locked_rx.recv().expect("lock taken");
    (locked_at, holder)
}
