//! Every function on one local HTTP port (`FUNCTIONS_ADDR`), for
//! development: `POST /webhooks/broker`, `/queue/completions`, `/ingest/prices`,
//! `/internal/account-links`, `/internal/position-sync`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    functions::runtime::main(&functions::Function::ALL).await
}
