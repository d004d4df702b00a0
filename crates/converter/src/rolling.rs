//! Phase 1 of a run, writing: batches of a table become a sequence of Parquet part files, one
//! open at a time (the contacts' files as they stream in; the lists' one file at the end). A
//! file is closed and the next one started once `bytes written + in-progress row group`
//! reaches [`WriterOptions::target_file_bytes`](crate::WriterOptions::target_file_bytes)
//! (checked after every batch, so a file overshoots by at most one batch). Each finished file
//! is remembered with its part number, staging and published paths, rows, bytes and the
//! statistics its table format keeps of it: all the later phases need of it.
//!
//! Where a part is written, and what statistics are gathered while it is, is the run's
//! `Format`'s to say (hidden under `_staging/{run_id}/` until the
//! commit renames it, or in its date folder where only the commit makes it visible); this
//! module is the same for every format.
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
use crate::format::{FileStatistics, StagedFile, TableFormat};
use crate::layout::{RunDirs, part_name};
use crate::location::OutputLocation;
use crate::options::SinkOptions;
use trackly_contacts::TableDefinition;

struct OpenFile {
    writer: AsyncArrowWriter<BufWriter>,
    staging: Path,
    part: u32,
    rows: u64,
    /// What the format records of the file, gathered batch by batch (if anything).
    stats: Option<Box<dyn FileStatistics>>,
}

/// The part files of one table of one run: the one being written and those finished.
pub(crate) struct RollingFiles {
    location: OutputLocation,
    table: &'static TableDefinition,
    props: WriterProperties,
    target_file_bytes: u64,
    run_id: String,
    dirs: RunDirs,
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
            dirs: dirs.clone(),
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
        // A finished file is written in place (where it is published) or not, as its format
        // stages files; this format must stage them the same way.
        let implementation = format.implementation();
        let wrong = self.finished.iter().any(|f| {
            let name = part_name(f.part, &self.run_id);
            let in_place = implementation.staged_path(&self.dirs, &name) == f.published;
            (f.staging == f.published) != in_place
        });
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

    /// The table the parts belong to.
    pub(crate) fn table(&self) -> &'static TableDefinition {
        self.table
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
        let file = match self.current.take() {
            Some(file) => file,
            None => self.open_next()?,
        };
        let file = self.current.insert(file);
        file.writer
            .write(batch)
            .await
            .map_err(|e| ConvertError::parquet(&file.staging, e))?;
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
        let implementation = self.format.implementation();
        let staging = implementation.staged_path(&self.dirs, &name);
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
            stats: implementation.file_statistics(self.table)?,
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
        let stats = file
            .stats
            .take()
            .map(|s| s.finish(&file.staging, file.rows));
        let stats = stats.transpose()?.flatten();
        self.finished.push(StagedFile {
            part: file.part,
            published: self
                .dirs
                .date
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
