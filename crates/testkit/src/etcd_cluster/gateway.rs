//! The questions the harness asks a running cluster, through each
//! member's HTTP gateway (health, status, leader, revision, compaction),
//! and the small HTTP/1.0 client that asks them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{EtcdCluster, EtcdClusterError, HTTP_TIMEOUT, START_TIMEOUT, err};

impl EtcdCluster {
    /// Waits until every running member reports itself healthy (it has a
    /// leader and answers).
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<(), EtcdClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut all = true;
            for (i, m) in self.members.iter().enumerate() {
                if m.process.is_none() {
                    continue;
                }
                let healthy = http(m.client, "GET", "/health", "")
                    .await
                    .is_ok_and(|(status, body)| status == 200 && body.contains("\"true\""));
                if !healthy {
                    all = false;
                    if Instant::now() >= deadline {
                        return Err(err(format!(
                            "member {i} not healthy within {timeout:?}: {}",
                            self.log_tail(i)
                        )));
                    }
                }
            }
            if all {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `(member_id, leader_id, revision)` as member `i` reports them.
    async fn status(&self, i: usize) -> Result<(String, String, i64), EtcdClusterError> {
        let member = self.member(i)?;
        let (status, body) = http(member.client, "POST", "/v3/maintenance/status", "{}").await?;
        if status != 200 {
            return Err(err(format!("status of member {i}: HTTP {status}: {body}")));
        }
        let field = |name: &str| {
            json_scalar(&body, name)
                .ok_or_else(|| err(format!("status of member {i}: no {name}: {body}")))
        };
        let revision = field("revision")?
            .parse()
            .map_err(|_| err(format!("status of member {i}: bad revision: {body}")))?;
        Ok((field("member_id")?, field("leader")?, revision))
    }

    /// The index of the current leader, as the running members see it.
    pub async fn leader_index(&self) -> Option<usize> {
        let mut ids = Vec::new();
        let mut leader = None;
        for i in 0..self.members.len() {
            if !self.is_running(i) {
                ids.push(None);
                continue;
            }
            match self.status(i).await {
                Ok((id, lead, _)) => {
                    if lead != "0" {
                        leader = Some(lead);
                    }
                    ids.push(Some(id));
                }
                Err(_) => ids.push(None),
            }
        }
        let leader = leader?;
        ids.iter()
            .position(|id| id.as_deref() == Some(leader.as_str()))
    }

    /// Hands leadership to member `to` (etcd's `MoveLeader`, asked of the
    /// current leader) and waits until every running member sees it.
    pub async fn move_leader(&self, to: usize) -> Result<(), EtcdClusterError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let leader = self.leader_index().await;
            if leader == Some(to) {
                return Ok(());
            }
            if let Some(leader) = leader {
                let (target, _, _) = self.status(to).await?;
                let body = format!("{{\"targetID\":\"{target}\"}}");
                let member = self.member(leader)?;
                let (status, text) = http(
                    member.client,
                    "POST",
                    "/v3/maintenance/transfer-leadership",
                    &body,
                )
                .await?;
                // A refusal (an election under way) is retried.
                let _ = (status, text);
            }
            if Instant::now() >= deadline {
                return Err(err(format!("member {to} did not become the leader")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current revision, from the first running member that answers.
    pub async fn revision(&self) -> Result<i64, EtcdClusterError> {
        let mut last = err("no running member");
        for i in 0..self.members.len() {
            if self.is_running(i) {
                match self.status(i).await {
                    Ok((_, _, revision)) => return Ok(revision),
                    Err(e) => last = e,
                }
            }
        }
        Err(last)
    }

    /// Compacts the key space up to `revision` (physically), through the
    /// first running member that accepts it.
    pub async fn compact(&self, revision: i64) -> Result<(), EtcdClusterError> {
        let body = format!("{{\"revision\":\"{revision}\",\"physical\":true}}");
        let mut last = err("no running member");
        for (i, m) in self.members.iter().enumerate() {
            if m.process.is_none() {
                continue;
            }
            match http(m.client, "POST", "/v3/kv/compaction", &body).await {
                Ok((200, _)) => return Ok(()),
                Ok((status, text)) => {
                    last = err(format!("compact via member {i}: HTTP {status}: {text}"))
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// One HTTP/1.0 request to the member's gateway (HTTP/1.0 so the answer is
/// not chunked), run off the async threads.
pub(super) async fn http(
    addr: SocketAddr,
    method: &'static str,
    path: &'static str,
    body: &str,
) -> Result<(u16, String), EtcdClusterError> {
    let body = body.to_owned();
    tokio::task::spawn_blocking(move || http_blocking(addr, method, path, &body))
        .await
        .map_err(|e| err(format!("http task: {e}")))?
}

fn http_blocking(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), EtcdClusterError> {
    let io = |e: std::io::Error| err(format!("{method} {path} on {addr}: {e}"));
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT)).map_err(io)?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(io)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(io)?;
    let (head, text) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| err(format!("{method} {path}: malformed HTTP response")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(format!("{method} {path}: no HTTP status in {head:?}")))?;
    Ok((status, text.to_owned()))
}

/// The first scalar `"name": "value"` or `"name": 123` in a JSON text. The
/// gateway's answers are flat enough for this; it avoids a JSON dependency.
fn json_scalar(json: &str, name: &str) -> Option<String> {
    let needle = format!("\"{name}\":");
    let start = json.find(&needle)? + needle.len();
    let rest = json[start..].trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next().map(str::to_owned)
    } else {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len());
        (end > 0).then(|| rest[..end].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_from_gateway_json() {
        let body = r#"{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"7","raft_term":"2"},"version":"3.4.23","leader":"10276657743932975437"}"#;
        assert_eq!(json_scalar(body, "revision").as_deref(), Some("7"));
        assert_eq!(
            json_scalar(body, "leader").as_deref(),
            Some("10276657743932975437")
        );
        assert_eq!(json_scalar(r#"{"a": 12}"#, "a").as_deref(), Some("12"));
        assert_eq!(json_scalar(r#"{"a": x}"#, "a"), None);
        assert_eq!(json_scalar("{}", "a"), None);
    }
}
