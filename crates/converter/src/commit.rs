//! Phase 4 of a run, the commit: its finished files become what readers see through the run's
//! [`TableFormat`] (see [`format`](mod@crate::format)), after the [`rolling`](crate::rolling)
//! files, the [`rejects`](crate::rejects) and the [`checkpoint`](crate::checkpoint); the
//! [`sink`](crate::sink) then clears the run's staging. A commit goes through the states of
//! [`CommitState`]: `Staged` → `Committing` → `Committed`, or `RolledBack` when it fails
//! (readers see what they saw before it began; for Delta, see the two-table caveat of
//! `delta`). A run that is not committed, or whose commit failed, is discarded through the
//! same interface (`TableFormat::discard`).

use chrono::Utc;

use crate::error::{ConvertError, Result};
use crate::format::{StagedRun, TableFormat};
use crate::summary::SinkSummary;
use crate::table::StagedTable;

/// Where a run's commit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    /// The files are written and waiting; readers see nothing of them.
    Staged,
    /// The commit is under way.
    Committing,
    /// Readers see the run.
    Committed,
    /// The commit failed; readers see what they saw before it began.
    RolledBack,
}

impl CommitState {
    /// The state after this one on `next`, with a debug event. The only moves are `Staged` →
    /// `Committing` → `Committed` or `RolledBack`.
    fn then(self, next: CommitState, format: &'static str) -> CommitState {
        use CommitState::*;
        debug_assert!(
            matches!(
                (self, next),
                (Staged, Committing) | (Committing, Committed | RolledBack)
            ),
            "commit cannot move from {self:?} to {next:?}"
        );
        tracing::debug!(format, from = ?self, to = ?next, "commit");
        next
    }
}

impl StagedTable {
    /// Publishes this table alone, for a run that exports no contacts, through the same
    /// commit as a run with contacts ([`commit`](crate::commit)): the steps, order and rollback of
    /// [`ParquetSink::finish`](crate::ParquetSink::finish) (Delta: one commit), then the
    /// table's [`with_retention`](Self::with_retention) and (Delta)
    /// [`with_vacuum_retention`](Self::with_vacuum_retention). On error the date folder is as
    /// it was and the staged objects are removed.
    pub async fn publish(self) -> Result<SinkSummary> {
        let mut commit = Committer::of(self.table_format());
        let run = StagedRun {
            location: &self.location,
            options: &self.options,
            started_at: self.started_at,
            retention_policy: self.retention_policy,
            tables: vec![self.to_commit()],
        };
        match commit.commit(run).await {
            Ok(mut summaries) => {
                self.clean_up_after_publication(Utc::now()).await;
                last_summary(&mut summaries, "the table")
            }
            Err(e) => {
                debug_assert_ne!(commit.state(), CommitState::Committed);
                let table = self.name();
                if let Err(cleanup) = self.abort().await {
                    tracing::warn!(%cleanup, table, "cannot remove a staged table");
                }
                Err(e)
            }
        }
    }
}

/// The last of a commit's `summaries` (that of `table`, which the run commits last).
pub(crate) fn last_summary(summaries: &mut Vec<SinkSummary>, table: &str) -> Result<SinkSummary> {
    summaries.pop().ok_or_else(|| ConvertError::InvalidOption {
        option: "publication",
        reason: format!("no summary of {table} (bug)"),
    })
}

/// The commit of a run, by its [`TableFormat`]'s [`Format`](crate::format::Format), and where it stands.
#[derive(Debug)]
pub(crate) struct Committer {
    format: TableFormat,
    state: CommitState,
}

impl Committer {
    /// A commit of `format`, [`CommitState::Staged`].
    pub(crate) fn of(format: TableFormat) -> Committer {
        Committer {
            format,
            state: CommitState::Staged,
        }
    }

    /// Commits `run`; returns each table's summary, in the order of `run.tables`. On error
    /// readers see what they saw before (see [`CommitState`]). Once committed, what the
    /// commit replaced is removed (best effort).
    pub(crate) async fn commit(&mut self, run: StagedRun<'_>) -> Result<Vec<SinkSummary>> {
        let name = self.format.name();
        self.state = self.state.then(CommitState::Committing, name);
        let format = self.format.implementation();
        let committed = format.commit(&run).await;
        let next = match committed {
            Ok(_) => CommitState::Committed,
            Err(_) => CommitState::RolledBack,
        };
        self.state = self.state.then(next, name);
        let summaries = committed?;
        // The run is committed: what follows is best effort.
        format.remove_replaced(&run).await;
        Ok(summaries)
    }

    /// Where the commit stands.
    pub(crate) fn state(&self) -> CommitState {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_starts_staged_and_moves_through_its_states() {
        let hive = Committer::of(TableFormat::Parquet);
        assert_eq!(hive.state(), CommitState::Staged);
        let committing = hive.state().then(CommitState::Committing, "parquet");
        assert_eq!(
            committing.then(CommitState::RolledBack, "parquet"),
            CommitState::RolledBack
        );
        assert_eq!(
            committing.then(CommitState::Committed, "parquet"),
            CommitState::Committed
        );
    }

    #[test]
    #[should_panic(expected = "cannot move")]
    #[cfg(debug_assertions)]
    fn a_commit_cannot_skip_a_state() {
        CommitState::Staged.then(CommitState::Committed, "parquet");
    }
}
