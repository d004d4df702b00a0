//! Each table an export writes, as one value: its name, Arrow schema, key columns, manifest
//! format and column hints. The converter's writer, checkpoint, retention and Delta statistics,
//! the CLI's `schema` command and the facade all read these, so a third table is one more
//! [`TableDefinition`] here (and the decoder that fills it).
//!
//! ```
//! use trackly_contacts::table::{CONTACTS, TABLES};
//!
//! assert_eq!(CONTACTS.name, "contacts");
//! assert_eq!(CONTACTS.key, ["phone_number", "list_number"]);
//! assert_eq!(CONTACTS.schema(), trackly_contacts::contacts_schema());
//! assert_eq!(TABLES.map(|t| t.name), ["contacts", "lists"]);
//! ```

use arrow_schema::SchemaRef;

use crate::lists::lists_schema;
use crate::schema::contacts_schema;

/// One table: what every part of an export that writes, reads or removes it needs to know.
#[derive(Debug)]
pub struct TableDefinition {
    /// Its folder under the output location, its word in `--tables` and its manifest's `table`.
    pub name: &'static str,
    /// Its manifest's `format`, which also tells retention a folder is this tool's.
    pub manifest_format: &'static str,
    schema: fn() -> SchemaRef,
    /// The columns that identify a row; a resumed run reads them back from the files it
    /// keeps, so as not to deliver those rows again.
    pub key: &'static [&'static str],
    /// How the writer treats particular columns.
    pub hints: ColumnHints,
}

impl TableDefinition {
    /// The Arrow schema of every batch and Parquet file of the table.
    pub fn schema(&self) -> SchemaRef {
        (self.schema)()
    }
}

/// Columns the writer treats apart from the rest. A column is named by its path: a top-level
/// column (`["phone_number"]`) or a field inside one (`["custom_fields", "key_value", "key"]`).
#[derive(Debug, Clone, Copy)]
pub struct ColumnHints {
    /// Written without dictionary encoding: values nearly unique per row (phone numbers,
    /// timestamps, `_extra`), where a dictionary only costs interning time and bytes (for the
    /// timestamps, measured in `benches/pipeline.rs`: 18% faster encoding, 11% smaller files).
    /// Every other column keeps its dictionary; the keys of `custom_fields`, a few names
    /// repeated on every row, most of all (without one, the contacts' files are 9% larger).
    pub no_dictionary: &'static [&'static [&'static str]],
    /// Top-level columns without file statistics (Delta's minimum, maximum and null count):
    /// free-form values no query filters on.
    pub no_statistics: &'static [&'static str],
    /// Top-level columns given a bloom filter when the writer is asked for bloom filters.
    pub bloom_filter: &'static [&'static str],
}

/// `GET /v2/contacts`: [`contacts_schema`], one row per contact and sending list.
pub const CONTACTS: TableDefinition = TableDefinition {
    name: "contacts",
    manifest_format: "trackly-export/contacts-manifest/v1",
    schema: contacts_schema,
    key: &["phone_number", "list_number"],
    hints: ColumnHints {
        no_dictionary: &[
            &["phone_number"],
            &["_extra"],
            &["signup_date"],
            &["last_sent_at"],
            &["last_clicked_at"],
        ],
        no_statistics: &["custom_fields", "_extra"],
        bloom_filter: &["phone_number"],
    },
};

/// `GET /v2/lists`: [`lists_schema`], one row per sending list, deleted ones included.
pub const LISTS: TableDefinition = TableDefinition {
    name: "lists",
    manifest_format: "trackly-export/lists-manifest/v1",
    schema: lists_schema,
    key: &["id"],
    // Its phone number and `_extra` as the contacts' (the lists are written with the same
    // writer settings).
    hints: ColumnHints {
        no_dictionary: &[&["phone_number"], &["_extra"]],
        no_statistics: &["_extra"],
        bloom_filter: &["phone_number"],
    },
};

/// Every table, in the order an export names them (`--tables` default, `schema` output).
pub const TABLES: [&TableDefinition; 2] = [&CONTACTS, &LISTS];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_a_definition_names_is_in_its_schema() {
        for table in TABLES {
            let schema = table.schema();
            let hints = &table.hints;
            for column in table
                .key
                .iter()
                .chain(hints.no_statistics)
                .chain(hints.bloom_filter)
                .copied()
                .chain(hints.no_dictionary.iter().map(|path| path[0]))
            {
                assert!(
                    schema.field_with_name(column).is_ok(),
                    "{}: {column}",
                    table.name
                );
            }
        }
    }
}
