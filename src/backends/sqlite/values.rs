//! Conversions between Rust values and SQLite columns. SQLite integers are `i64`, so sizes and
//! versions (`u64`) are checked on the way in; digests are stored in their canonical text form
//! and parsed on the way out, so a corrupt row is reported instead of passed on.

use rusqlite::types::Type;
use rusqlite::Row;

use crate::traits::{Digest, StorageError, StorageResult};

/// `value` as an SQLite integer; `what` names it in the error.
pub(crate) fn to_integer(value: u64, what: impl FnOnce() -> String) -> StorageResult<i64> {
    i64::try_from(value).map_err(|_| {
        StorageError::InvalidArgument(format!(
            "{} is {value}, more than this backend can store ({})",
            what(),
            i64::MAX
        ))
    })
}

/// A `LIMIT` parameter: SQLite takes an `i64`, and no table holds more rows than that.
pub(crate) fn limit_parameter(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Reads column `index` of `row` as a digest.
/// The page of digests of `sql` (a query of one digest column taking the digest to start
/// after as `?1` and the page size as `?2`) strictly after `after`.
pub(crate) fn digest_page(
    connection: &rusqlite::Connection,
    sql: &str,
    after: Option<&Digest>,
    limit: usize,
) -> rusqlite::Result<Vec<Digest>> {
    let after = after.map_or("", Digest::as_str);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    connection
        .prepare_cached(sql)?
        .query_map(rusqlite::params![after, limit], |row| digest_column(row, 0))?
        .collect()
}

pub(crate) fn digest_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Digest> {
    let text: String = row.get(index)?;
    Digest::parse_owned(text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
    })
}

/// Reads column `index` of `row` as an optional digest (NULL is `None`).
pub(crate) fn optional_digest_column(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<Digest>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(text) => Digest::parse_owned(text).map(Some).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
        }),
    }
}

/// Reads column `index` of `row` as a non-negative integer (sizes, versions, counts).
pub(crate) fn u64_column(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}
