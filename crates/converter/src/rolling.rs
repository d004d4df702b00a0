//! Phase 1 of a run, writing: batches of a table become a sequence of Parquet part files, one
//! open at a time (the contacts' files as they stream in; the lists' one file at the end). A file is closed and the next one started once `bytes written + in-progress row
//! group` reaches [`WriterOptions::target_file_bytes`](crate::WriterOptions::target_file_bytes)
//! (checked after every batch, so a file overshoots by at most one batch). Each finished file
//! is remembered with its part number, staging and published paths, rows, bytes and, for
//! Delta, its statistics: all the later phases need of it.
//!
//! Where a part is written depends on the table format:
//!
//! - Hive-style ([`TableFormat::Parquet`]):
//!   `_staging/{run_id}/part-NNNNN-{run_id}.parquet.inprogress`, renamed into its date folder
//!   by the [`commit`](crate::commit);
//! - Delta: `extract_date=…/part-NNNNN-{run_id}.parquet`, its final place, outside the Delta
//!   log (so invisible to Delta readers) until the commit adds it.
//!
//! Next: the [`rejects`](crate::rejects) written beside the files, the
//! [`checkpoint`](crate::checkpoint) that records the finished files for a resumed run, and the
//! [`commit`](crate::commit).
//!
//! # Memory usage
//!
//! The encoded (compressed) pages of the row group in progress, which the Parquet writer must
//! hold until the row group is complete (about `row_group_rows` × the encoded row size), plus
//! the upload buffer: at most [`UPLOAD_PART_BYTES`](crate::sink::UPLOAD_PART_BYTES) buffered
//! and [`UPLOAD_CONCURRENCY`](crate::sink::UPLOAD_CONCURRENCY) parts of that size in flight.

use arrow_array::RecordBatch;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::error::{ConvertError, Result};
use crate::format::TableFormat;
use crate::layout::{RunDirs, in_progress, part_name};
use crate::location::OutputLocation;
use crate::options::SinkOptions;
use trackly_contacts::TableDefinition;

/// A finished part file, waiting for the commit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StagedFile {
    /// Its part number (`part-NNNNN`).
    pub(crate) part: u32,
    /// Where the file is written: under `_staging/` for Parquet, in its date folder (its
    /// final place, outside the log until the commit) for Delta.
    pub(crate) staging: Path,
    /// Where it is published.
    pub(crate) published: Path,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    /// Delta statistics JSON of the file (Delta only).
    pub(crate) stats: Option<String>,
}

impl StagedFile {
    /// Whether the file is written where it is published (Delta).
    fn in_place(&self) -> bool {
        self.staging == self.published
    }
}

struct OpenFile {
    writer: AsyncArrowWriter<BufWriter>,
    staging: Path,
    part: u32,
    rows: u64,
    /// The file's Delta statistics, gathered batch by batch (Delta only).
    #[cfg(feature = "delta")]
    stats: Option<crate::delta::FileStats>,
}

/// The part files of one table of one run: the one being written and those finished.
pub(crate) struct RollingFiles {
    location: OutputLocation,
    table: &'static TableDefinition,
    props: WriterProperties,
    target_file_bytes: u64,
    run_id: String,
    staging_dir: Path,
    date_dir: Path,
    format: TableFormat,
    current: Option<OpenFile>,
    finished: Vec<StagedFile>,
    next_part: u32,
}

impl RollingFiles {
    /// Validates the writer options of `options`; nothing is written until the first batch.
    pub(crate) fn new(
        location: &OutputLocation,
        table: &'static TableDefinition,
        options: &SinkOptions,
        dirs: &RunDirs,
    ) -> Result<RollingFiles> {
        let props =
            options
                .writer
                .writer_properties(table, &options.run_id, options.extract_date)?;
        Ok(RollingFiles {
            location: location.clone(),
            table,
            props,
            target_file_bytes: options.writer.target_file_bytes,
            run_id: options.run_id.clone(),
            staging_dir: dirs.staging.clone(),
            date_dir: dirs.date.clone(),
            format: TableFormat::Parquet,
            current: None,
            finished: Vec::new(),
            next_part: 0,
        })
    }

    /// Continues after `finished`, the files of an interrupted run: new parts are numbered
    /// after them.
    pub(crate) fn resume_after(&mut self, finished: Vec<StagedFile>) {
        for file in finished {
            self.next_part = self.next_part.max(file.part + 1);
            self.finished.push(file);
        }
    }

    /// Writes the next parts where `format` publishes them. Refused once a file is open, or
    /// when finished files were written for another format (a resumed run keeps its format).
    pub(crate) fn set_format(&mut self, format: TableFormat) -> Result<()> {
        let wrong = match format {
            TableFormat::Parquet => self.finished.iter().any(StagedFile::in_place),
            #[cfg(feature = "delta")]
            TableFormat::Delta => self.finished.iter().any(|f| !f.in_place()),
        };
        if wrong || self.current.is_some() {
            return Err(ConvertError::InvalidOption {
                option: "table_format",
                reason: format!(
                    "run {} was written with another table format; resume it with the same one",
                    self.run_id
                ),
            });
        }
        self.format = format;
        Ok(())
    }

    /// The format the parts are written for.
    pub(crate) fn format(&self) -> TableFormat {
        self.format
    }

    /// The files finished so far, in part order.
    pub(crate) fn finished(&self) -> &[StagedFile] {
        &self.finished
    }

    /// The part number of the file being written, if one is open.
    pub(crate) fn open_part(&self) -> Option<u32> {
        self.current.as_ref().map(|f| f.part)
    }

    /// Appends a batch (of the table's schema) to the current file, starting a new file when
    /// the current one has reached the target size.
    pub(crate) async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            self.current = Some(self.open_next()?);
        }
        let Some(file) = self.current.as_mut() else {
            return Ok(());
        };
        file.writer
            .write(batch)
            .await
            .map_err(|e| ConvertError::parquet(&file.staging, e))?;
        #[cfg(feature = "delta")]
        if let Some(stats) = file.stats.as_mut() {
            stats.merge(&file.staging, batch)?;
        }
        file.rows += batch.num_rows() as u64;
        let size = file.writer.bytes_written() + file.writer.in_progress_size();
        if size as u64 >= self.target_file_bytes {
            self.close_current().await?;
        }
        Ok(())
    }

    /// Closes the file in progress and returns every finished file. A run without rows still
    /// gets one file, with the schema and no rows, so its date folder is never empty.
    pub(crate) async fn finish(&mut self) -> Result<&[StagedFile]> {
        if self.current.is_none() && self.finished.is_empty() {
            self.current = Some(self.open_next()?);
        }
        self.close_current().await?;
        Ok(&self.finished)
    }

    /// Aborts the upload of the file in progress (best effort); finished files stay.
    pub(crate) async fn abort_open(&mut self) {
        if let Some(file) = self.current.take() {
            let mut upload = file.writer.into_inner();
            let _ = upload.abort().await;
        }
    }

    /// Starts the next part.
    fn open_next(&mut self) -> Result<OpenFile> {
        let part = self.next_part;
        self.next_part += 1;
        let name = part_name(part, &self.run_id);
        let staging = match self.format {
            TableFormat::Parquet => self.staging_dir.clone().join(in_progress(&name)),
            // Outside the log until the commit: invisible to Delta readers where it is.
            #[cfg(feature = "delta")]
            TableFormat::Delta => self.date_dir.clone().join(name),
        };
        let writer = AsyncArrowWriter::try_new(
            self.location.upload(&staging),
            self.table.schema(),
            Some(self.props.clone()),
        )
        .map_err(|e| ConvertError::parquet(&staging, e))?;
        Ok(OpenFile {
            writer,
            staging,
            part,
            rows: 0,
            #[cfg(feature = "delta")]
            stats: match self.format {
                TableFormat::Delta => Some(crate::delta::FileStats::new(
                    &self.table.schema(),
                    self.table.hints.no_statistics,
                )?),
                TableFormat::Parquet => None,
            },
        })
    }

    async fn close_current(&mut self) -> Result<()> {
        // Taken out first: a writer whose upload failed to complete must not be aborted later
        // (its upload is gone or unusable either way).
        let Some(mut file) = self.current.take() else {
            return Ok(());
        };
        file.writer
            .finish()
            .await
            .map_err(|e| ConvertError::parquet(&file.staging, e))?;
        let bytes = file.writer.bytes_written() as u64;
        let stats = finish_stats(self.table, &mut file)?;
        self.finished.push(StagedFile {
            part: file.part,
            published: self
                .date_dir
                .clone()
                .join(part_name(file.part, &self.run_id)),
            staging: file.staging,
            rows: file.rows,
            bytes,
            stats,
        });
        Ok(())
    }
}

/// The Delta statistics JSON of a file just closed (`None` for Parquet).
#[cfg(feature = "delta")]
fn finish_stats(table: &TableDefinition, file: &mut OpenFile) -> Result<Option<String>> {
    let Some(mut stats) = file.stats.take() else {
        return Ok(None);
    };
    if file.rows == 0 {
        // `numRecords: 0` needs one (empty) batch merged.
        stats.merge(&file.staging, &RecordBatch::new_empty(table.schema()))?;
    }
    stats.finish(&file.staging)
}

#[cfg(not(feature = "delta"))]
fn finish_stats(_table: &TableDefinition, _file: &mut OpenFile) -> Result<Option<String>> {
    Ok(None)
}
