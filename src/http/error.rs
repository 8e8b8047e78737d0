//! The one HTTP error type of the admin API, mapped to status codes in one place, and the JSON
//! body extractor whose rejections say what was wrong.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::{AuthError, RateLimited};
use crate::service::ServiceError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
    /// Set for a bad (not merely missing) token: the challenge then says `invalid_token`.
    invalid_token: bool,
}

/// Marks a 401 response whose token was present but bad; the challenge
/// (`well_known::challenge`, run by the host guard) reads it, because only it knows the
/// request's public base URL.
#[derive(Clone, Copy, Debug)]
pub struct InvalidToken;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            invalid_token: false,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // A bare challenge, so a 401 is well-formed even outside the router; the challenge
            // middleware replaces it with one that names the resource metadata.
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            if self.invalid_token {
                res.extensions_mut().insert(InvalidToken);
            }
        }
        res
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        if let ServiceError::Store(store) = &e
            && let Some(why) = store.unavailable()
        {
            tracing::error!(error = %e, "a request failed on a database fault");
            let mut err = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the database cannot take this request right now: {why}; try again later"),
            );
            err.retry_after = Some(5);
            return err;
        }
        let status = match &e {
            ServiceError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Forbidden(_) | ServiceError::RegistrationClosed => StatusCode::FORBIDDEN,
            ServiceError::BadCredentials => StatusCode::UNAUTHORIZED,
            ServiceError::Internal(_) | ServiceError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The detail goes to the log; the client gets no database internals.
            tracing::error!(error = %e, "request failed");
            return Self::new(status, "internal error; see the gateway log");
        }
        Self::new(status, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let mut err = Self::new(StatusCode::UNAUTHORIZED, e.to_string());
        // No token (or not a bearer one) gets a plain challenge (RFC 6750 §3.1).
        err.invalid_token = !matches!(e, AuthError::Missing | AuthError::Malformed);
        err
    }
}

impl From<RateLimited> for ApiError {
    fn from(e: RateLimited) -> Self {
        let mut err = Self::new(StatusCode::TOO_MANY_REQUESTS, e.to_string());
        err.retry_after = Some(e.retry_after.as_secs().max(1));
        err
    }
}

/// `axum::Json` with rejections turned into `{"error": …}` naming the offending field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let detail = std::error::Error::source(&rejection)
        .map(ToString::to_string)
        .unwrap_or_else(|| rejection.body_text());
    match rejection {
        JsonRejection::JsonDataError(_) => {
            ApiError::bad_request(format!("invalid request body: {detail}"))
        }
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request(format!("malformed JSON: {detail}"))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected a JSON body with 'Content-Type: application/json'",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large")
        }
        other => ApiError::new(other.status(), other.body_text()),
    }
}

/// Parses an id from a path segment, naming what kind of id was expected.
pub fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid {what} id {raw:?}: expected a UUID")))
}
