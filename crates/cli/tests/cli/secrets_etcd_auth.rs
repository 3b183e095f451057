//! Secrets never leak through a real etcd login (issue 14): a real etcd
//! (Debian's `etcd-server`, started by the testkit harness) with
//! authentication on, a canary username and password given as `env:`
//! references, TRACE-level logging. `validate --connect` and `watch` log in
//! for real (anonymous reads are refused, so every member line proves a
//! login), etcd is killed (failure) and restarted (reconnect, a second
//! login), and a wrong canary password is refused. Every stdout and stderr
//! is searched: no canary appears.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, Permission};
use provisioning_testkit::etcd_cluster::EtcdCluster;

use super::support::{Sandbox, finish, run_with_limit, signal};

const USER: &str = "cnry-etcdauth-user-61c0";
const PASSWORD: &str = "cnry-etcdauth-pass-7d2e";
const WRONG_PASSWORD: &str = "cnry-etcdauth-wrong-8f4a";
const ROOT_PASSWORD: &str = "cnry-etcdauth-root-93b5";
const CANARIES: &[&str] = &[USER, PASSWORD, WRONG_PASSWORD, ROOT_PASSWORD];
const PREFIX: &str = "/cluster/app/";

fn member(id: &str, port: u16) -> String {
    format!(r#"{{"id":"{id}","host":"127.0.0.1","port":{port}}}"#)
}

/// Puts the first member, then turns authentication on with a root user and
/// the canary user, who may read the prefix only.
async fn prepare(endpoints: &[String]) {
    let mut c = Client::connect(endpoints, None).await.expect("connect");
    c.put(format!("{PREFIX}n1"), member("n1", 4001), None)
        .await
        .expect("put n1");
    c.role_add("root").await.expect("root role");
    c.user_add("root", ROOT_PASSWORD, None)
        .await
        .expect("root user");
    c.user_grant_role("root", "root").await.expect("grant root");
    c.role_add("reader").await.expect("reader role");
    c.role_grant_permission("reader", Permission::read(PREFIX).with_prefix())
        .await
        .expect("reader permission");
    c.user_add(USER, PASSWORD, None).await.expect("canary user");
    c.user_grant_role(USER, "reader")
        .await
        .expect("grant reader");
    c.auth_enable().await.expect("auth on");
}

async fn put_as_root(endpoints: &[String], key: &str, value: String) {
    let mut c = Client::connect(
        endpoints,
        Some(ConnectOptions::new().with_user("root", ROOT_PASSWORD)),
    )
    .await
    .expect("root login");
    c.put(format!("{PREFIX}{key}"), value, None)
        .await
        .expect("put as root");
}

fn command(sb: &Sandbox, args: &[&str], password: &str) -> Command {
    let mut cmd = sb.command(args);
    cmd.env("RUST_LOG", "trace")
        .env("CANARY_ETCD_USER", USER)
        .env("CANARY_ETCD_PASS", password);
    cmd
}

/// Reads `watch --json` lines into a channel as they come.
fn lines_of(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a `snapshot` line whose members include `id`; returns the lines
/// read meanwhile.
fn wait_for_member(
    lines: &mpsc::Receiver<String>,
    id: &str,
    limit: Duration,
    seen: &mut Vec<String>,
) -> bool {
    let deadline = Instant::now() + limit;
    let needle = format!(r#""id":"{id}""#);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(r#""type":"snapshot""#) && line.contains(&needle);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn etcd_credentials_never_appear_through_login_failure_and_relogin() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut cluster = match runtime.block_on(EtcdCluster::start(1)) {
        Ok(cluster) => cluster,
        Err(e) => panic!("a real etcd is needed (cargo xtask ci installs etcd-server): {e}"),
    };
    let endpoints = cluster.endpoints();
    runtime.block_on(prepare(&endpoints));

    let sb = Sandbox::new();
    sb.write_store(&format!(
        concat!(
            r#"{{"id":"etcd-a","kind":"etcd","priority":10,"endpoints":["{endpoint}"],"#,
            r#""auth":{{"username":"env:CANARY_ETCD_USER","password":"env:CANARY_ETCD_PASS"}},"#,
            r#""watch":{{"prefix":"{prefix}"}},"enabled":true}}"#,
            "\n"
        ),
        endpoint = endpoints[0],
        prefix = PREFIX,
    ));
    let mut outputs: Vec<(String, String)> = Vec::new();
    let limit = Duration::from_secs(60);

    // The right password: the preflight logs in and reads the prefix.
    let connect = run_with_limit(command(&sb, &["validate", "--connect"], PASSWORD), limit);
    assert_eq!(connect.code, Some(0), "{connect:?}");
    outputs.push(("validate --connect stdout".into(), connect.stdout.clone()));
    outputs.push(("validate --connect stderr".into(), connect.stderr.clone()));

    // A wrong password is refused with permission_denied, and neither
    // password shows.
    let wrong = run_with_limit(
        command(&sb, &["validate", "--connect"], WRONG_PASSWORD),
        limit,
    );
    assert_ne!(wrong.code, Some(0), "{wrong:?}");
    assert!(
        wrong.stderr.contains("permission_denied"),
        "a wrong password is a permission error: {wrong:?}"
    );
    outputs.push(("wrong password stdout".into(), wrong.stdout.clone()));
    outputs.push(("wrong password stderr".into(), wrong.stderr.clone()));

    // `watch`: log in, see n1; etcd dies (faults); etcd comes back with n2
    // put meanwhile by root; the watch logs in again and sees n2.
    let started = Instant::now();
    let mut child = command(&sb, &["--json", "watch"], PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let lines = lines_of(child.stdout.take().expect("stdout"));
    let mut stderr = child.stderr.take().expect("stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut seen = Vec::new();
    let first = wait_for_member(&lines, "n1", Duration::from_secs(30), &mut seen);
    let logged_in = started.elapsed();
    cluster.kill(0).expect("kill etcd");
    std::thread::sleep(Duration::from_secs(2));
    runtime.block_on(async {
        cluster.restart(0).await.expect("restart etcd");
        put_as_root(&endpoints, "n2", member("n2", 4002)).await;
    });
    let restarted = Instant::now();
    let second = wait_for_member(&lines, "n2", Duration::from_secs(40), &mut seen);
    let relogin = restarted.elapsed();
    signal(&child, "TERM");
    // Whatever is still buffered.
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
        seen.push(line);
    }
    let run = finish(child, started, Duration::from_secs(20));
    let stderr = stderr_reader.join().unwrap_or_default();
    let stdout = seen.join("\n");
    assert!(first, "no snapshot with n1 after login: {stdout}\n{stderr}");
    assert!(
        second,
        "no snapshot with n2 after etcd came back: {stdout}\n{stderr}"
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        stdout.contains(r#""type":"provider_health""#),
        "etcd's death was reported: {stdout}"
    );
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "the run logged at TRACE level: {} bytes of stderr",
        stderr.len()
    );
    outputs.push(("watch stdout".into(), stdout));
    outputs.push(("watch stderr".into(), stderr));

    let mut bytes = 0;
    for (name, text) in &outputs {
        bytes += text.len();
        for canary in CANARIES {
            assert!(
                !text.contains(canary),
                "{name} shows the canary {canary:?}:\n{text}"
            );
        }
    }
    println!(
        "etcd auth canary: first login and snapshot after {logged_in:?}, \
         re-login after the restart {relogin:?}; {bytes} bytes of output searched, \
         no canary"
    );
}
