//! Valuing a stored snapshot at the latest market marks: what a new
//! connection, a re-snapshot and `GET /api/portfolio` show, so a client that
//! reconnects sees current P&L, not the P&L of the last fill.

use common::event::{Symbol, Timestamp};
use common::pnl::Book;
use common::protocol::Snapshot;
use event_log::{EventLog, LogError};

/// Values `book` at the stored marks of its symbols (a mark reprices a
/// snapshot position whatever its age: see `common::pnl::book`).
pub(crate) async fn value_at_marks(log: &dyn EventLog, book: &mut Book) -> Result<(), LogError> {
    let symbols: Vec<Symbol> = book.symbols().cloned().collect();
    if symbols.is_empty() {
        return Ok(());
    }
    let marks = log.marks(&symbols).await?;
    book.at_marks(marks.iter().flatten(), Timestamp::now());
    Ok(())
}

/// `snapshot` with its positions and account valued at the latest marks.
pub(crate) async fn value_snapshot(log: &dyn EventLog, snapshot: &mut Snapshot) -> Result<(), LogError> {
    let mut book = Book::of_snapshot(snapshot);
    value_at_marks(log, &mut book).await?;
    book.write_to(snapshot);
    Ok(())
}
