//! The AWS Lambda adapters. HTTP triggers (API Gateway REST v1 and HTTP v2,
//! ALB) go through `lambda_http` to the same [`crate::app`] router the local
//! server uses. The work queue's SQS trigger goes through `lambda_runtime`:
//! each record is one completion, and only the records that failed are
//! reported back (`batchItemFailures`), so one poisonous message is retried
//! (and eventually dead-lettered) alone. Enable "ReportBatchItemFailures"
//! on the event source mapping.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use axum::http::uri::{PathAndQuery, Uri};
use axum::Router;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use lambda_runtime::{service_fn, LambdaEvent};
use tower::util::MapRequest;
use tower::ServiceExt;

use crate::deps::Deps;
use crate::error::Error;
use crate::{completion, input};

/// The SQS attribute naming a FIFO queue's message group.
const MESSAGE_GROUP_ID: &str = "MessageGroupId";

/// The router as `lambda_http` drives it.
pub type HttpService = MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request>;

/// Serves HTTP events from the Lambda runtime API until the runtime stops.
pub async fn run_http(router: Router) -> Result<(), lambda_runtime::Error> {
    lambda_http::run(http_service(router)).await
}

/// The router behind `lambda_http`: API Gateway puts a named stage in front
/// of the path (`/prod/ingest/prices`); the routes are stage-free, so the
/// stage is removed first. Tests drive fixtures through this same service.
pub fn http_service(router: Router) -> HttpService {
    router.map_request(without_stage as fn(lambda_http::Request) -> lambda_http::Request)
}

fn without_stage(mut request: lambda_http::Request) -> lambda_http::Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|stage| !stage.is_empty() && stage != "$default") else {
        return request;
    };
    let uri = request.uri();
    let Some(rest) = uri.path().strip_prefix('/').and_then(|p| p.strip_prefix(stage.as_str())) else {
        return request;
    };
    if !rest.starts_with('/') {
        return request;
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = PathAndQuery::try_from(path_and_query).ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}

/// Serves SQS events from the Lambda runtime API until the runtime stops.
pub async fn run_sqs(deps: Arc<Deps>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move { Ok::<_, Infallible>(handle_sqs(event.payload, &deps).await) }
    }))
    .await
}

/// Handles a batch of completion messages, in order; the answer lists the
/// ids of the messages that failed. In a FIFO queue, once a message of a
/// group failed the group's later messages are not processed but reported
/// failed too, so they are redelivered in order.
pub async fn handle_sqs(event: SqsEvent, deps: &Deps) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut failed_groups = HashSet::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record.attributes.get(MESSAGE_GROUP_ID).cloned();
        if group.as_ref().is_some_and(|g| failed_groups.contains(g)) {
            response.add_failure(id);
            continue;
        }
        let result = match record.body.as_deref() {
            Some(body) => match input::parse::<completion::Completion>(body.as_bytes()) {
                Ok(message) => completion::handle(message, deps)
                    .await
                    .map(|outcome| crate::publish::record(crate::Function::QueueCompletions, outcome)),
                Err(error) => Err(error),
            },
            None => Err(Error::field("body", "the SQS message has no body")),
        };
        if let Err(error) = result {
            tracing::warn!(
                message_id = %id,
                code = error.code(),
                retryable = error.is_retryable(),
                %error,
                "Queue message failed; reported for redelivery."
            );
            if let Some(group) = group {
                failed_groups.insert(group);
            }
            response.add_failure(id);
        }
    }
    response
}
