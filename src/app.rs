//! Builds the HTTP application from [`AppState`] and runs it. Tests call [`router`] and
//! [`serve_on`] exactly as `agora serve` does, on a listener they bound to port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::AppError;
use crate::state::AppState;
use crate::{accounts, admin, db, federation, groups, instance, threads, web, worker};

/// Largest request body we read at all (ActivityPub caps documents at 1 MiB too). Routes that take
/// uploads raise their own limit.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests that take longer are answered with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router(state: AppState) -> Router {
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    let mut app = Router::new()
        .merge(web::routes())
        .merge(accounts::routes::routes())
        .merge(admin::routes::routes())
        .merge(instance::routes::routes())
        .merge(federation::routes::routes())
        .merge(federation::api::routes())
        .merge(federation::pages::routes())
        .merge(groups::routes::routes())
        .merge(groups::routes::notification_routes())
        .merge(threads::routes::routes())
        .merge(crate::openapi::routes())
        .merge(crate::media::routes::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async { AppError::not_found() })
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // Merged after the limit above, so only their own, larger limit applies to them.
        .merge(
            Router::new()
                .merge(groups::routes::upload_routes())
                .merge(accounts::routes::upload_routes())
                .layer(RequestBodyLimitLayer::new(crate::media::routes::MAX_UPLOAD_BODY)),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::require_password_change,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::csrf::ensure_cookie,
        ))
        // axum's own 2 MB default would answer oversize bodies differently per extractor.
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::errors::render_errors,
        ));
    for layer in web::security::layers() {
        app = app.layer(layer);
    }
    app.layer(CompressionLayer::new())
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_response(on_response),
        )
        .layer(SetRequestIdLayer::new(x_request_id, RandomRequestId))
        .with_state(state)
}

#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id: u64 = rand::random();
        HeaderValue::from_str(&format!("{id:016x}"))
            .ok()
            .map(RequestId::new)
    }
}

fn make_span<B>(req: &Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
}

fn on_response<B>(res: &Response<B>, latency: Duration, _: &tracing::Span) {
    tracing::info!(
        status = res.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "response"
    );
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and every migration is applied.
async fn readyz(State(state): State<AppState>) -> Response {
    let check = state.db().run(db::migrations_applied).await;
    match check {
        Ok(true) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "migrations_pending", "message": "Database migrations are not applied yet; run `agora migrate`." })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "database_unavailable", "message": "The database cannot be reached." })),
            )
                .into_response()
        }
    }
}

/// Serves on `listener` until `shutdown` resolves, then finishes in-flight requests. Also runs the
/// background job worker for as long as the server runs.
pub async fn serve_on(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_worker, worker_stop) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(worker::run(state.clone(), worker_stop.clone()));
    let deliveries = tokio::spawn(federation::delivery::run(state.clone(), worker_stop));
    let app = router(state);
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_worker.send(true);
    let _ = worker.await;
    let _ = deliveries.await;
    result
}

/// Registers SIGTERM and SIGINT handlers now, so a signal that arrives before the server runs is
/// not lost, and returns a future that resolves on either.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::info!("shutting down: finishing requests in flight");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: finishing requests in flight");
        })
    }
}
