//! Which tables an export writes: [`Table`] and the set [`Tables`] (`--tables contacts,lists`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use trackly_contacts::TableDefinition;
use trackly_contacts::table::{CONTACTS, LISTS};

/// One table an export can write, each in its own folder under the output location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// `GET /v2/contacts` (filtered by the [`Query`](crate::Query)) in `contacts/`.
    Contacts,
    /// `GET /v2/lists`, every list including deleted ones, in `lists/`.
    Lists,
}

impl Table {
    /// Every table, in the order of `--tables`' default.
    pub const ALL: [Table; 2] = [Table::Contacts, Table::Lists];

    /// What the table is: its name, schema, key, manifest format and column hints.
    pub fn definition(self) -> &'static TableDefinition {
        match self {
            Table::Contacts => &CONTACTS,
            Table::Lists => &LISTS,
        }
    }

    /// The table's name: its folder, and its word in `--tables`.
    pub fn name(self) -> &'static str {
        self.definition().name
    }

    /// The table's bit in [`Tables`].
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--tables` value that names no table or an unknown one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a comma-separated list of tables from {}", Tables::ALL.iter().map(Table::name).collect::<Vec<_>>().join(", "))]
pub struct InvalidTables {
    /// The text as given.
    pub input: String,
}

impl FromStr for Table {
    type Err = InvalidTables;

    fn from_str(s: &str) -> Result<Table, InvalidTables> {
        Table::ALL
            .into_iter()
            .find(|t| t.name() == s.trim())
            .ok_or_else(|| InvalidTables {
                input: s.to_owned(),
            })
    }
}

/// The tables a run writes: at least one (default: all). Every table of a run is published in
/// the same step with the same run id, or none is; a table left out is not touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    /// One bit per table, by its place in [`Table::ALL`].
    bits: u8,
}

impl Tables {
    /// Every table.
    pub const ALL: Tables = Tables {
        bits: (1 << Table::ALL.len()) - 1,
    };

    /// One table alone.
    pub fn only(table: Table) -> Tables {
        Tables { bits: table.bit() }
    }

    /// Whether `table` is written.
    pub fn contains(self, table: Table) -> bool {
        self.bits & table.bit() != 0
    }

    /// The tables written, in [`Table::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Table> {
        Table::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

impl Default for Tables {
    /// Every table.
    fn default() -> Self {
        Tables::ALL
    }
}

impl FromIterator<Table> for Tables {
    /// The tables named (an empty iterator gives a set that writes nothing: the builder and
    /// [`FromStr`] refuse that).
    fn from_iter<I: IntoIterator<Item = Table>>(iter: I) -> Self {
        Tables {
            bits: iter.into_iter().fold(0, |bits, t| bits | t.bit()),
        }
    }
}

impl FromStr for Tables {
    type Err = InvalidTables;

    /// `contacts,lists`, `lists`, ...: names separated by commas, spaces around them ignored,
    /// a name twice allowed; at least one.
    fn from_str(s: &str) -> Result<Tables, InvalidTables> {
        let invalid = || InvalidTables {
            input: s.to_owned(),
        };
        let tables = s
            .split(',')
            .map(|name| name.parse::<Table>().map_err(|_| invalid()))
            .collect::<Result<Tables, _>>()?;
        if tables.iter().next().is_none() {
            return Err(invalid());
        }
        Ok(tables)
    }
}

impl fmt::Display for Tables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Table::name).collect();
        f.write_str(&names.join(","))
    }
}

impl Serialize for Tables {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_parse_from_comma_separated_names() {
        assert_eq!("contacts,lists".parse(), Ok(Tables::ALL));
        assert_eq!(" lists , contacts ".parse(), Ok(Tables::ALL));
        assert_eq!("lists".parse(), Ok(Tables::only(Table::Lists)));
        assert_eq!(
            "contacts,contacts".parse(),
            Ok(Tables::only(Table::Contacts))
        );
        for bad in ["", ",", "contacts,", "list", "Contacts", "contacts;lists"] {
            assert!(bad.parse::<Tables>().is_err(), "{bad:?}");
        }
        assert_eq!(Tables::ALL.to_string(), "contacts,lists");
        assert_eq!(Tables::only(Table::Lists).to_string(), "lists");
        assert_eq!(Tables::default(), Tables::ALL);
        assert_eq!(
            serde_json::to_value(Tables::ALL).ok(),
            Some(serde_json::json!(["contacts", "lists"]))
        );
    }
}
