//! The queue-completions function: work-queue completions (SQS on Lambda). Lambda when `AWS_LAMBDA_RUNTIME_API` is
//! set, local HTTP on `FUNCTIONS_ADDR` otherwise (docs/functions.md).

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    functions::runtime::main(&[functions::Function::QueueCompletions]).await
}
