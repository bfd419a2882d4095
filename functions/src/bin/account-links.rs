//! The account-links function: the app's broker-linking flow. Lambda when
//! `AWS_LAMBDA_RUNTIME_API` is set, local HTTP on `FUNCTIONS_ADDR` otherwise
//! (docs/functions.md).

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    functions::runtime::main(&[functions::Function::AccountLinks]).await
}
