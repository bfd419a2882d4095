//! The in-memory event log against the shared conformance suite.

use std::sync::Arc;

use async_trait::async_trait;
use common::event::UserId;
use event_log::conformance::Fixture;
use event_log::index::IngestIndex;
use event_log::memory::MemoryLog;
use event_log::{EventLog, LogSettings};

struct Memory(Arc<MemoryLog>);

#[async_trait]
impl Fixture for Memory {
    async fn new(settings: LogSettings) -> Self {
        Memory(Arc::new(MemoryLog::new(settings)))
    }

    fn log(&self) -> Arc<dyn EventLog> {
        self.0.clone()
    }

    fn index(&self) -> Arc<dyn IngestIndex> {
        self.0.clone()
    }

    async fn lose_history(&self, user: &UserId) {
        self.0.lose_history(user);
    }
}

event_log::conformance_suite!(Memory);
