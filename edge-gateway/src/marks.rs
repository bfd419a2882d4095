//! Valuing a stored snapshot at the latest market marks: what a new
//! connection, a re-snapshot and `GET /api/portfolio` show, so a client that
//! reconnects sees current P&L, not the P&L of the last fill.

use common::event::{Symbol, Timestamp};
use common::pnl::Book;
use common::protocol::Snapshot;
use event_log::{EventLog, LogError};

/// The snapshot's book, valued at the stored marks of its symbols (a mark
/// reprices a snapshot position whatever its age: see `common::pnl::book`),
/// and the snapshot rewritten to match.
pub(crate) async fn value_at_marks(log: &dyn EventLog, snapshot: &mut Snapshot) -> Result<Book, LogError> {
    let mut book = Book::of_snapshot(snapshot);
    let symbols: Vec<Symbol> = book.symbols().cloned().collect();
    if symbols.is_empty() {
        return Ok(book);
    }
    let marks = log.marks(&symbols).await?;
    book.at_marks(marks.iter().flatten(), Timestamp::now());
    book.write_to(snapshot);
    Ok(book)
}
