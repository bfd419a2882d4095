//! All three functions on one local HTTP port (`FUNCTIONS_ADDR`), for
//! development: `POST /webhooks/broker`, `/queue/completions`, `/ingest/prices`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    functions::runtime::main(&functions::Function::ALL).await
}
