//! [`ApiError`]: an admin API error as `{"error": MESSAGE, "code": CODE}`
//! with its HTTP status (CONTRACTS §4).

use crate::ProvisioningError;
use crate::registry::ErrorCode;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the admin API.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// An error with an explicit status.
    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_argument`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidArgument, message)
    }

    /// 404 `not_found`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// 401 `unauthorized`.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    /// 413 `payload_too_large`.
    pub(crate) fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("payload larger than {limit} bytes"),
        )
    }

    /// 503 `not_ready`.
    pub(crate) fn not_ready(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady,
            message,
        )
    }

    /// The HTTP status.
    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    #[cfg(test)]
    pub(crate) fn code(&self) -> ErrorCode {
        self.code
    }
}

/// The status of a service error: bad input 400, taken ids and disabled
/// providers 409, unknown ids 404, store failures 500, anything that can
/// pass by itself 503 (a store lock held elsewhere, `store_busy`, included).
fn status_for(error: &ProvisioningError) -> StatusCode {
    if matches!(error, ProvisioningError::Io { .. }) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    match error.error_code() {
        ErrorCode::InvalidConfig
        | ErrorCode::InlineSecret
        | ErrorCode::InvalidArgument
        | ErrorCode::ForbiddenSecretRef
        | ErrorCode::InvalidDescriptor => StatusCode::BAD_REQUEST,
        ErrorCode::DuplicateName
        | ErrorCode::DuplicatePriority
        | ErrorCode::Conflict
        | ErrorCode::ProviderDisabled => StatusCode::CONFLICT,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PermissionDenied => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::StoreBusy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<ProvisioningError> for ApiError {
    fn from(error: ProvisioningError) -> Self {
        Self {
            status: status_for(&error),
            code: error.error_code(),
            message: one_line(&error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.message, "code": self.code.as_str() }).to_string();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `text` on one line: its non-empty lines, trimmed, joined by spaces.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProviderId;

    #[test]
    fn service_errors_get_the_documented_statuses() {
        let id = ProviderId::new("a").unwrap();
        let cases = [
            (
                ProvisioningError::DuplicateName { id: id.clone() },
                StatusCode::CONFLICT,
            ),
            (
                ProvisioningError::ProviderDisabled { id: id.clone() },
                StatusCode::CONFLICT,
            ),
            (
                ProvisioningError::provider_not_found("x"),
                StatusCode::NOT_FOUND,
            ),
            (
                ProvisioningError::invalid(Some(&id), Some("watch".into()), "bad"),
                StatusCode::BAD_REQUEST,
            ),
            (
                ProvisioningError::ForbiddenSecretRef {
                    provider: Some(id.clone()),
                    field: "auth.token".into(),
                    reference: crate::api::SecretRef::Env("HOME".into()),
                    reason: "not allowed".into(),
                },
                StatusCode::BAD_REQUEST,
            ),
            (
                ProvisioningError::InvalidDescriptor {
                    provider: Some(id.clone()),
                    field: Some("tls.ca".into()),
                    message: "is a FIFO".into(),
                },
                StatusCode::BAD_REQUEST,
            ),
            (
                ProvisioningError::io("rename", "/s", std::io::Error::other("disk")),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                ProvisioningError::StoreBusy {
                    lock: "/s/providers.jsonl.lock".into(),
                    waited: std::time::Duration::from_secs(10),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(ApiError::from(error).status(), status);
        }
    }
}
