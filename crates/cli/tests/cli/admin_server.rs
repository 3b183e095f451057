//! A `provisioning serve` process under test.

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http_client::{Answer, send};
use super::support::{Run, Sandbox, signal};

/// A running `serve` on an ephemeral loopback port.
pub(crate) struct AdminServer {
    pub(crate) base: String,
    pub(crate) token: Option<String>,
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    started: Instant,
}

impl AdminServer {
    /// Starts `serve --listen 127.0.0.1:0` on the sandbox's store; with a
    /// token, writes it to a file and passes `--token-file`.
    pub(crate) fn start(sb: &Sandbox, token: Option<&str>) -> Self {
        Self::start_with(sb, token, &[])
    }

    /// [`start`](Self::start) with global flags before `serve`.
    pub(crate) fn start_with(sb: &Sandbox, token: Option<&str>, global: &[&str]) -> Self {
        Self::launch(sb, token, global, &[], &[])
    }

    /// [`start`](Self::start) with flags after `serve` and extra
    /// environment variables.
    pub(crate) fn start_serving(
        sb: &Sandbox,
        token: Option<&str>,
        serve: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::launch(sb, token, &[], serve, env)
    }

    fn launch(
        sb: &Sandbox,
        token: Option<&str>,
        global: &[&str],
        serve: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut args: Vec<&str> = global.to_vec();
        args.extend(["serve", "--listen", "127.0.0.1:0"]);
        args.extend(serve);
        let token_path = sb.path("admin-token");
        let token_arg;
        if let Some(token) = token {
            std::fs::write(&token_path, format!("{token}\n")).expect("token file");
            token_arg = token_path.display().to_string();
            args.extend(["--token-file", token_arg.as_str()]);
        }
        let mut command = sb.command(&args);
        command.envs(env.iter().copied());
        Self::spawn(command, token)
    }

    /// Starts a prepared `serve` command (its stdout and stderr piped).
    pub(crate) fn spawn(mut command: std::process::Command, token: Option<&str>) -> Self {
        let started = Instant::now();
        let mut child = command.spawn().expect("spawn serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr_pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr_pipe);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = tx.send(first);
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
        });
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| {
                panic!(
                    "no address in {first:?}; stderr: {}",
                    stderr.lock().unwrap()
                )
            })
            .to_owned();
        println!("serve listening on {base} after {:?}", started.elapsed());
        Self {
            base,
            token: token.map(str::to_owned),
            child: Some(child),
            stderr,
            started,
        }
    }

    /// A request with the server's token (if any).
    pub(crate) fn call(&self, method: &str, path: &str, body: &str) -> Answer {
        send(method, &self.base, path, self.token.as_deref(), body)
    }

    /// A request with an explicit token.
    pub(crate) fn call_as(&self, token: Option<&str>, method: &str, path: &str) -> Answer {
        send(method, &self.base, path, token, "")
    }

    /// Waits until `check` holds for a GET of `path`.
    pub(crate) fn wait_for(&self, path: &str, check: impl Fn(&Answer) -> bool) -> Answer {
        let started = Instant::now();
        loop {
            let answer = self.call("GET", path, "");
            if check(&answer) || started.elapsed() > Duration::from_secs(15) {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The ids `GET /providers` lists, in its order.
    pub(crate) fn provider_ids(&self) -> Vec<String> {
        let answer = self.call("GET", "/providers", "");
        assert_eq!(answer.status, 200, "{answer:?}");
        answer
            .json()
            .as_array()
            .expect("an array")
            .iter()
            .map(|p| p["id"].as_str().expect("an id").to_owned())
            .collect()
    }

    /// Everything the server wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends a signal (`HUP`, `TERM`, `INT`).
    pub(crate) fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            signal(child, sig);
        }
    }

    /// SIGTERM, then waits for the exit.
    pub(crate) fn stop(mut self) -> Run {
        let mut child = self.child.take().expect("running");
        signal(&child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            code: status.code(),
            stdout: String::new(),
            stderr: self.stderr(),
            took: self.started.elapsed(),
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
