//! The admin HTTP API of CONTRACTS §4 on axum.

use crate::api::ProviderId;
use crate::registry::{descriptor_from_json, descriptor_to_json};
use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::registry::ErrorCode;

use super::AdminApi;
use super::api_error::ApiError;
use super::connection_handle::ConnectionHandle;
use super::event_stream::events;
use super::provider_view_json::provider_view_json;
use super::request_guard::RequestGuard;
use super::status_page::status_page;

/// Largest request body accepted (413 above).
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// Every route, behind the checks of CONTRACTS §4a rule 2 and the token,
/// in this order, all before a body is read or a handler runs (so a
/// refused request changes nothing):
/// 1. `Host` and `Origin` must name this listener (403): a page in the
///    operator's browser is refused whether or not it could guess a token,
///    and the probes are covered too (a rebound page must not read them);
/// 2. the token (401, except `/healthz` and `/readyz`): without it nothing
///    more is told, not even which body would have been accepted;
/// 3. a `POST` body must be `application/json` (415);
/// 4. the body limit (413).
pub(crate) fn router(state: AdminApi, guard: RequestGuard) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/topology", get(topology))
        .route("/providers", get(list_providers).post(add_provider))
        .route("/providers/{id}", delete(remove_provider))
        .route("/failover", post(failover))
        .route("/events", get(events))
        .route("/metrics", get(metrics))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn(require_json))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(middleware::from_fn_with_state(guard, require_same_site))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// 403 unless `Host` and `Origin` name this listener.
async fn require_same_site(
    State(guard): State<RequestGuard>,
    request: Request,
    next: Next,
) -> Response {
    let connection = request.extensions().get::<ConnectionHandle>();
    if let Err(refused) = guard.check_site(request.uri(), request.headers(), connection) {
        return refused.into_response();
    }
    next.run(request).await
}

/// 415 unless a `POST` declares a JSON body.
async fn require_json(request: Request, next: Next) -> Response {
    if let Err(refused) = RequestGuard::check_media_type(request.method(), request.headers()) {
        return refused.into_response();
    }
    next.run(request).await
}

/// 401 unless the request carries the token; probes stay open. Without a
/// token (CONTRACTS §4a rule 1) only a request that provably came over
/// loopback is served, probes included: the connection's local address
/// (a [`ConnectionHandle`]) or its peer (axum's `ConnectInfo`) must be a
/// loopback address, and a configured listen address beyond loopback
/// refuses everything (403 `insecure_listen`).
async fn require_token(State(state): State<AdminApi>, request: Request, next: Next) -> Response {
    let open = matches!(request.uri().path(), "/healthz" | "/readyz");
    if state.token().is_none()
        && let Err(refused) = loopback_only(&state, &request)
    {
        return refused.into_response();
    }
    if let Some(token) = state.token()
        && !open
    {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        if !token.accepts(presented) {
            let why = if presented.is_some() {
                "wrong bearer token"
            } else {
                "missing `Authorization: Bearer <token>`"
            };
            return ApiError::unauthorized(format!("unauthorized: {why}")).into_response();
        }
    }
    next.run(request).await
}

/// `Ok` when a token-less API may answer `request`: see [`require_token`].
fn loopback_only(state: &AdminApi, request: &Request) -> Result<(), ApiError> {
    let refuse = |message: &str| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InsecureListen,
            format!("{message}; serving other hosts needs a token"),
        ))
    };
    if !state.listen().ip().is_loopback() {
        return refuse("this admin API has no token and is configured beyond loopback");
    }
    let local = request
        .extensions()
        .get::<ConnectionHandle>()
        .map(ConnectionHandle::local_addr);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    match (local, peer) {
        (None, None) => refuse(
            "this admin API has no token and cannot tell whether the request came over loopback (serve it with a ConnectionHandle or ConnectInfo)",
        ),
        (local, peer) => {
            let on_loopback =
                |addr: Option<SocketAddr>| addr.is_none_or(|a| a.ip().to_canonical().is_loopback());
            if on_loopback(local) && on_loopback(peer) {
                Ok(())
            } else {
                refuse("this admin API has no token and answers loopback connections only")
            }
        }
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The request body as UTF-8 text, with 413 over the limit.
fn body_text(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(BODY_LIMIT)
        } else {
            ApiError::bad_request(format!("cannot read the body: {}", rejection.body_text()))
        }
    })?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("the body is not valid UTF-8"))
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, json!({"status": "ok"}).to_string())
}

async fn readyz(State(state): State<AdminApi>) -> Result<Response, ApiError> {
    let handle = state.handle();
    // A stopped service keeps its last snapshot: it is not ready.
    if handle.is_stopped() {
        return Err(ApiError::not_ready("not ready: the service has stopped"));
    }
    if handle.is_unavailable() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::registry::ErrorCode::ProvisioningUnavailable,
            "no provider is usable",
        ));
    }
    let Some(snapshot) = handle.topology() else {
        return Err(ApiError::not_ready("not ready: no snapshot published yet"));
    };
    Ok(json_response(
        StatusCode::OK,
        json!({"ready": true, "provider_id": snapshot.provider_id().as_str()}).to_string(),
    ))
}

async fn topology(State(state): State<AdminApi>) -> Result<Response, ApiError> {
    let snapshot = state
        .handle()
        .topology()
        .ok_or_else(|| ApiError::not_ready("not ready: no snapshot published yet"))?;
    let body = serde_json::to_string(&*snapshot)
        .map_err(|e| ApiError::bad_request(format!("cannot write the snapshot: {e}")))?;
    Ok(json_response(StatusCode::OK, body))
}

async fn list_providers(State(state): State<AdminApi>) -> Result<Response, ApiError> {
    let views = state.handle().providers().await?;
    let objects = views
        .iter()
        .map(provider_view_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json_response(
        StatusCode::OK,
        format!("[{}]", objects.join(",")),
    ))
}

async fn add_provider(
    State(state): State<AdminApi>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let text = body_text(body)?;
    let descriptor = descriptor_from_json(&text)?;
    state.secret_refs().check(&descriptor)?;
    state.handle().add_provider(descriptor.clone()).await?;
    let mut response = json_response(StatusCode::CREATED, descriptor_to_json(&descriptor)?);
    if let Ok(location) = HeaderValue::from_str(&format!("/providers/{}", descriptor.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn remove_provider(
    State(state): State<AdminApi>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.handle().remove_provider(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn failover(
    State(state): State<AdminApi>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let text = body_text(body)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request(
            r#"expected {"to": ID} or {"to": null}"#,
        ));
    };
    if let Some(unknown) = object.keys().find(|k| *k != "to") {
        return Err(ApiError::bad_request(format!(
            "unknown field \"{unknown}\""
        )));
    }
    match object.get("to") {
        Some(Value::Null) => {
            state.handle().unpin().await?;
            Ok(json_response(
                StatusCode::OK,
                json!({"pinned": null}).to_string(),
            ))
        }
        Some(Value::String(to)) => {
            // An id that cannot exist is as unknown as one that does not.
            let id = ProviderId::new(to.as_str())
                .map_err(|_| ApiError::not_found(format!("provider \"{to}\" not found")))?;
            state.handle().pin(&id).await?;
            Ok(json_response(
                StatusCode::OK,
                json!({"pinned": id.as_str()}).to_string(),
            ))
        }
        _ => Err(ApiError::bad_request(
            r#"field "to": expected a provider id or null"#,
        )),
    }
}

async fn metrics(State(state): State<AdminApi>) -> Response {
    let mut response =
        (StatusCode::OK, state.handle().metrics().render_prometheus()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        crate::registry::ErrorCode::InvalidArgument,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route {method} {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::ClusterProvisioningService;

    use super::*;

    #[tokio::test]
    async fn readyz_is_503_once_the_service_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("providers.jsonl");
        std::fs::write(
            &store,
            concat!(
                r#"{"id":"a","kind":"in_memory","priority":1,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#,
                "\n"
            ),
        )
        .unwrap();
        let validator = crate::builtin_validator();
        let registry = crate::ProviderRegistry::builder()
            .with_validator(validator.clone())
            .with_store(std::sync::Arc::new(
                provisioning_store_file::FileProviderStore::new(store).with_validator(validator),
            ))
            .build();
        registry.load().unwrap();
        let handle = ClusterProvisioningService::build(registry).start().unwrap();
        let state = AdminApi::new(
            handle.clone(),
            super::super::AdminConfig::new(
                "127.0.0.1:0".parse().unwrap(),
                crate::registry::SecretRefPolicy::new(".", "."),
            ),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while readyz(State(state.clone())).await.is_err() {
            assert!(Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        handle.shutdown().await.unwrap();
        let refused = readyz(State(state)).await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.code(), crate::registry::ErrorCode::NotReady);
    }
}
