//! The position-sync function: one broker account's positions and balances
//! reconciled with its user's snapshot. Lambda when `AWS_LAMBDA_RUNTIME_API`
//! is set, local HTTP on `FUNCTIONS_ADDR` otherwise (docs/functions.md).

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    functions::runtime::main(&[functions::Function::PositionSync]).await
}
