//! One connection to either back end: SQLite (embedded, the default) or PostgreSQL (shared by
//! replicas). The store's queries are written once, in the SQL both understand, with SQLite's
//! numbered parameters (`?1`); this module runs them on whichever database the store opened.
//!
//! Where the two dialects differ, a query asks [`Conn::dialect`] and says both; nothing here
//! rewrites SQL beyond the parameter markers and SQLite's index hints (`INDEXED BY`), which
//! PostgreSQL's planner, with its statistics, does without.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{IsNull, ToSql, Type};

use crate::StoreError;

/// Which SQL a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection to the store's database.
pub(crate) enum Conn {
    Lite(rusqlite::Connection),
    Pg(Box<PgConn>),
}

/// A PostgreSQL client and the statements it prepared, keyed by their SQLite-form text.
///
/// A connection the server closed (a restart, a failover) is opened again before the next
/// statement, so a long-running process outlives the outage: the work that saw the loss fails,
/// and the next tries again. Never inside a transaction: its statements would then commit one
/// by one on the new connection, so there the loss is an error until the transaction ends.
pub(crate) struct PgConn {
    client: RefCell<postgres::Client>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    in_transaction: std::cell::Cell<bool>,
    /// The URL it was opened with, for a second connection; never shown (it may hold a password).
    pub(crate) url: String,
}

impl PgConn {
    pub(crate) fn new(client: postgres::Client, url: &str) -> PgConn {
        PgConn {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
            in_transaction: std::cell::Cell::new(false),
            url: url.to_owned(),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
    }

    /// The client, connected again first if the server had closed it.
    fn client(&self) -> Result<std::cell::RefMut<'_, postgres::Client>, StoreError> {
        let mut client = self.client.borrow_mut();
        if client.is_closed() && !self.in_transaction.get() {
            *client = crate::location::connect(&self.url)?;
            self.statements.borrow_mut().clear();
        }
        Ok(client)
    }

    fn statement(&self, sql: &str) -> Result<postgres::Statement, StoreError> {
        let mut client = self.client()?;
        if let Some(stmt) = self.statements.borrow().get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = client.prepare(&numbered_to_dollar(&without_index_hints(sql)))?;
        self.statements.borrow_mut().insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    fn query(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<postgres::Row>, StoreError> {
        let stmt = self.statement(sql)?;
        let params = pg_params(args);
        Ok(self.client()?.query(&stmt, &params)?)
    }
}

/// The parameters as the PostgreSQL client takes them.
fn pg_params<'a>(args: &'a [Arg<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// `?1` → `$1`, outside quoted text: the one difference of syntax every query has.
fn numbered_to_dollar(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// The query without its `INDEXED BY name` clauses.
fn without_index_hints(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains("INDEXED BY") {
        return sql.into();
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find("INDEXED BY") {
        out.push_str(rest[..at].trim_end());
        let after = rest[at + "INDEXED BY".len()..].trim_start();
        let name_end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        rest = &after[name_end..];
    }
    out.push_str(rest);
    out.into()
}

/// A value bound to a query parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

/// What can be bound as a parameter: `args!` takes each by reference and keeps only what the
/// value itself borrows, so a temporary `&str` (`id.as_str()`) lives as long as its string.
pub(crate) trait IntoArg<'a> {
    fn into_arg(self) -> Arg<'a>;
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl<'a> IntoArg<'a> for &$t {
            fn into_arg(self) -> Arg<'a> {
                Arg::Int(i64::from(*self))
            }
        }
    )*};
}
int_arg!(i64, i32, u32, u16, u8, bool);

impl<'a> IntoArg<'a> for &f64 {
    fn into_arg(self) -> Arg<'a> {
        Arg::Real(*self)
    }
}

impl<'a> IntoArg<'a> for &'a str {
    fn into_arg(self) -> Arg<'a> {
        Arg::Text(self)
    }
}

impl<'a> IntoArg<'a> for &'a String {
    fn into_arg(self) -> Arg<'a> {
        Arg::Text(self)
    }
}

/// A reference to a reference binds what the inner one borrows.
impl<'a, T: ?Sized> IntoArg<'a> for &&'a T
where
    &'a T: IntoArg<'a>,
{
    fn into_arg(self) -> Arg<'a> {
        (*self).into_arg()
    }
}

impl<'a, 'b, T> IntoArg<'a> for &'b Option<T>
where
    &'b T: IntoArg<'a>,
{
    fn into_arg(self) -> Arg<'a> {
        self.as_ref().map_or(Arg::Null, IntoArg::into_arg)
    }
}

impl<'a> IntoArg<'a> for &Arg<'a> {
    fn into_arg(self) -> Arg<'a> {
        *self
    }
}

/// The parameters of a query: `args![tenant.as_str(), nanos(at)]`.
macro_rules! args {
    ($($x:expr),* $(,)?) => {
        [$($crate::db::IntoArg::into_arg(&$x)),*]
    };
}
pub(crate) use args;

/// A value owned, for parameters gathered before their statement runs (a batch of rows, the
/// filters a page was asked for, a copied table).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl<'a> IntoArg<'a> for &'a Value {
    fn into_arg(self) -> Arg<'a> {
        match self {
            Value::Null => Arg::Null,
            Value::Int(v) => Arg::Int(*v),
            Value::Real(v) => Arg::Real(*v),
            Value::Text(s) => Arg::Text(s),
        }
    }
}

impl Value {
    fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Real(v) => Some(*v as i64),
            Value::Null | Value::Text(_) => None,
        }
    }

    fn as_real(&self) -> Option<f64> {
        match self {
            Value::Real(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            Value::Null | Value::Text(_) => None,
        }
    }

    fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            Value::Null | Value::Int(_) | Value::Real(_) => None,
        }
    }
}

impl From<Arg<'_>> for Value {
    fn from(arg: Arg<'_>) -> Value {
        match arg {
            Arg::Null => Value::Null,
            Arg::Int(v) => Value::Int(v),
            Arg::Real(v) => Value::Real(v),
            Arg::Text(s) => Value::Text(s.to_owned()),
        }
    }
}

/// `(?1, ?2), (?3, ?4)`: the placeholders of `rows` rows of `width` values.
pub(crate) fn placeholders(rows: usize, width: usize) -> String {
    tuples(rows, width, |n, _| format!("?{n}"))
}

/// `(CAST(?1 AS bigint), …), (…)`: the placeholders of `rows` rows typed `types`, for a VALUES
/// list outside an INSERT, which has no column to take a type from.
pub(crate) fn cast_placeholders(rows: usize, types: &[&str]) -> String {
    tuples(rows, types.len(), |n, c| format!("CAST(?{n} AS {})", types[c]))
}

/// `rows` tuples of `width` cells, each written by `cell(parameter number, column)`.
fn tuples(rows: usize, width: usize, cell: impl Fn(usize, usize) -> String) -> String {
    let rows: Vec<String> = (0..rows)
        .map(|r| {
            let cells: Vec<String> = (0..width).map(|c| cell(r * width + c + 1, c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    rows.join(", ")
}

/// Rows written by one statement shape, `head VALUES (…) tail`. On PostgreSQL they are held
/// and sent as one array per column, `head SELECT * FROM unnest($1::type[], …) tail`, so a batch
/// of thousands of rows is one prepared statement and one round trip, where a row at a time
/// would cost an import or a scan most of its time; SQLite, in process, takes each row at once.
/// A row whose key is already held sends the batch first, so rows apply in order (one statement
/// cannot upsert the same row twice).
pub(crate) struct Batch<K> {
    head: &'static str,
    tail: &'static str,
    /// Each column's PostgreSQL type: `bigint`, `text` or `double precision`.
    types: &'static [&'static str],
    /// The one-row statement SQLite runs.
    one_row: String,
    rows: Vec<Value>,
    keys: std::collections::HashSet<K>,
}

/// Rows per batch statement.
const BATCH_ROWS: usize = 2_000;

impl<K: std::hash::Hash + Eq> Batch<K> {
    pub(crate) fn new(head: &'static str, tail: &'static str, types: &'static [&'static str]) -> Batch<K> {
        let one_row = format!("{head} VALUES {} {tail}", placeholders(1, types.len()));
        Batch { head, tail, types, one_row, rows: Vec::new(), keys: std::collections::HashSet::new() }
    }

    /// Writes a row: at once on SQLite; on PostgreSQL held, sending the batch first when it
    /// holds `key`, and after when it is full. Returns the rows the statements sent changed.
    pub(crate) fn push(&mut self, conn: &Conn, key: impl FnOnce() -> K, row: &[Arg<'_>]) -> Result<u64, StoreError> {
        debug_assert_eq!(row.len(), self.types.len());
        if let Conn::Lite(_) = conn {
            return conn.execute(&self.one_row, row);
        }
        let key = key();
        let mut changed = 0;
        if self.keys.contains(&key) {
            changed += self.flush(conn)?;
        }
        self.keys.insert(key);
        self.rows.extend(row.iter().copied().map(Value::from));
        if self.rows.len() >= BATCH_ROWS * self.types.len() {
            changed += self.flush(conn)?;
        }
        Ok(changed)
    }

    /// Sends what the batch holds; returns the rows the statement changed.
    pub(crate) fn flush(&mut self, conn: &Conn) -> Result<u64, StoreError> {
        if self.rows.is_empty() {
            return Ok(0);
        }
        let Conn::Pg(pg) = conn else { unreachable!("SQLite's rows are written as they come, never held") };
        let width = self.types.len();
        let column = |c: usize| self.rows.iter().skip(c).step_by(width);
        let mut arrays: Vec<Box<dyn ToSql + Sync + '_>> = Vec::with_capacity(width);
        for (c, ty) in self.types.iter().enumerate() {
            arrays.push(match *ty {
                "bigint" => Box::new(column(c).map(Value::as_int).collect::<Vec<Option<i64>>>()),
                "double precision" => Box::new(column(c).map(Value::as_real).collect::<Vec<Option<f64>>>()),
                _ => Box::new(column(c).map(Value::as_text).collect::<Vec<Option<&str>>>()),
            });
        }
        let unnest: Vec<String> = self.types.iter().enumerate().map(|(c, ty)| format!("?{}::{ty}[]", c + 1)).collect();
        let sql = format!("{} SELECT * FROM unnest({}) {}", self.head, unnest.join(", "), self.tail);
        let stmt = pg.statement(&sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = arrays.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
        let changed = pg.client()?.execute(&stmt, &params);
        drop(params);
        drop(arrays);
        self.rows.clear();
        self.keys.clear();
        Ok(changed?)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Null => ValueRef::Null,
            Arg::Int(v) => ValueRef::Integer(v),
            Arg::Real(v) => ValueRef::Real(v),
            Arg::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // PostgreSQL infers each parameter's type from where it stands; an integer fits any of
        // the integer types (or a flag) it lands in, as it would in SQLite.
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                _ => Err(format!("an integer parameter cannot be a {ty}").into()),
            },
            Arg::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                _ => Err(format!("a real parameter cannot be a {ty}").into()),
            },
            Arg::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// One result row.
pub(crate) enum Row<'r> {
    Lite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `i` as a `T`.
    pub(crate) fn get<T: Col>(&self, i: usize) -> Result<T, StoreError> {
        match self {
            Row::Lite(r) => Ok(r.get(i)?),
            Row::Pg(r) => T::pg(r, i),
        }
    }

    /// Column `i` as text whatever its stored type: ids that must be compared and reported
    /// even when a hand edit stored them as something else.
    pub(crate) fn lossy_text(&self, i: usize) -> Result<String, StoreError> {
        use rusqlite::types::ValueRef;
        match self {
            Row::Lite(r) => Ok(match r.get_ref(i)? {
                ValueRef::Null => String::new(),
                ValueRef::Integer(i) => i.to_string(),
                ValueRef::Real(f) => f.to_string(),
                ValueRef::Text(bytes) | ValueRef::Blob(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            }),
            // PostgreSQL keeps every value in its column's type.
            Row::Pg(_) => Ok(self.get::<Option<String>>(i)?.unwrap_or_default()),
        }
    }
}

/// What a column can be read as, from either back end.
pub(crate) trait Col: rusqlite::types::FromSql + Sized {
    fn pg(row: &postgres::Row, i: usize) -> Result<Self, StoreError>;
}

fn pg_int(row: &postgres::Row, i: usize) -> Result<Option<i64>, StoreError> {
    Ok(match *row.columns()[i].type_() {
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(i64::from),
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(i64::from),
        Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(i64::from),
        _ => row.try_get::<_, Option<i64>>(i)?,
    })
}

fn present<T>(row: &postgres::Row, i: usize, v: Option<T>) -> Result<T, StoreError> {
    v.ok_or_else(|| StoreError::Column { column: row.columns()[i].name().to_owned(), reason: "is NULL".to_owned() })
}

fn narrow<T: TryFrom<i64>>(row: &postgres::Row, i: usize, v: i64) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| StoreError::Column {
        column: row.columns()[i].name().to_owned(),
        reason: format!("{v} is out of range"),
    })
}

macro_rules! int_col {
    ($($t:ty),*) => {$(
        impl Col for $t {
            fn pg(row: &postgres::Row, i: usize) -> Result<Self, StoreError> {
                let v = present(row, i, pg_int(row, i)?)?;
                narrow(row, i, v)
            }
        }
        impl Col for Option<$t> {
            fn pg(row: &postgres::Row, i: usize) -> Result<Self, StoreError> {
                pg_int(row, i)?.map(|v| narrow(row, i, v)).transpose()
            }
        }
    )*};
}
int_col!(i64, u32, u8);

impl Col for bool {
    fn pg(row: &postgres::Row, i: usize) -> Result<Self, StoreError> {
        Ok(present(row, i, pg_int(row, i)?)? != 0)
    }
}

impl Col for f64 {
    fn pg(row: &postgres::Row, i: usize) -> Result<Self, StoreError> {
        let v = match *row.columns()[i].type_() {
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?,
            _ => pg_int(row, i)?.map(|v| v as f64),
        };
        present(row, i, v)
    }
}

impl Col for Option<f64> {
    fn pg(row: &postgres::Row, i: usize) -> Result<Self, StoreError> {
        Ok(match *row.columns()[i].type_() {
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?,
            _ => pg_int(row, i)?.map(|v| v as f64),
        })
    }
}

impl Col for String {
    fn pg(row: &postgres::Row, i: usize) -> Result<Self, StoreError> {
        let v = row.try_get::<_, Option<String>>(i)?;
        present(row, i, v)
    }
}

impl Col for Option<String> {
    fn pg(row: &postgres::Row, i: usize) -> Result<Self, StoreError> {
        Ok(row.try_get::<_, Option<String>>(i)?)
    }
}

impl Conn {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Conn::Lite(_) => Dialect::Sqlite,
            Conn::Pg(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        match self {
            Conn::Lite(c) => Ok(c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(args))? as u64),
            Conn::Pg(c) => {
                let stmt = c.statement(sql)?;
                let params = pg_params(args);
                Ok(c.client()?.execute(&stmt, &params)?)
            }
        }
    }

    /// Runs a statement that is not run again soon (a batch of rows of its own size): prepared
    /// for this run only, so it takes no place in the statement caches.
    pub(crate) fn execute_once(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        match self {
            Conn::Lite(c) => Ok(c.execute(sql, rusqlite::params_from_iter(args))? as u64),
            Conn::Pg(c) => {
                let sql = numbered_to_dollar(sql);
                let params = pg_params(args);
                Ok(c.client()?.execute(sql.as_str(), &params)?)
            }
        }
    }

    /// [`Conn::rows`] for a statement not run again soon: prepared for this run only.
    pub(crate) fn rows_once<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Conn::Lite(c) => {
                let mut stmt = c.prepare(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Lite(r))?);
                }
                Ok(out)
            }
            Conn::Pg(c) => {
                let sql = numbered_to_dollar(sql);
                let params = pg_params(args);
                let found = c.client()?.query(sql.as_str(), &params)?;
                found.iter().map(|r| f(&Row::Pg(r))).collect()
            }
        }
    }

    /// Every row of a query, each read by `f`.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.each(sql, args, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` with each row of a query, in order.
    pub(crate) fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Lite(r))?;
                }
                Ok(())
            }
            // Read whole before `f` runs, so `f` may query the same connection.
            Conn::Pg(c) => c.query(sql, args)?.iter().try_for_each(|r| f(&Row::Pg(r))),
        }
    }

    /// Calls `f` with each row as it arrives, never holding the whole answer: for reads larger
    /// than memory. On PostgreSQL the rows are still arriving on the connection while `f` runs,
    /// so `f` must not use it (use [`Conn::each`] for that).
    pub(crate) fn stream(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Conn::Lite(_) => self.each(sql, args, f),
            Conn::Pg(c) => {
                use postgres::fallible_iterator::FallibleIterator;
                let stmt = c.statement(sql)?;
                let params = pg_params(args);
                let mut client = c.client()?;
                let mut rows = client.query_raw(&stmt, params.iter().copied())?;
                while let Some(r) = rows.next()? {
                    f(&Row::Pg(&r))?;
                }
                Ok(())
            }
        }
    }

    /// The first row of a query, read by `f`; `None` when there is none.
    pub(crate) fn row<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self {
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                rows.next()?.map(|r| f(&Row::Lite(r))).transpose()
            }
            Conn::Pg(c) => c.query(sql, args)?.first().map(|r| f(&Row::Pg(r))).transpose(),
        }
    }

    /// Whether a query returns a row.
    pub(crate) fn exists(&self, sql: &str, args: &[Arg<'_>]) -> Result<bool, StoreError> {
        Ok(self.row(sql, args, |_| Ok(()))?.is_some())
    }

    /// Runs statements separated by `;`, with no parameters (schema changes).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Conn::Lite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(c) => Ok(c.client()?.batch_execute(sql)?),
        }
    }

    /// Checks foreign keys again after a bulk write that turned SQLite's checks off; PostgreSQL
    /// defers them to the commit instead, and needs nothing.
    pub(crate) fn foreign_keys_on(&self) {
        if let Conn::Lite(c) = self {
            let _ = c.pragma_update(None, "foreign_keys", "ON");
        }
    }

    /// Starts a write transaction; it rolls back unless committed.
    pub(crate) fn begin(&self) -> Result<Tx<'_>, StoreError> {
        // SQLite: take the write lock at once, so a transaction that reads before it writes
        // waits its turn behind another writer instead of failing when it comes to write.
        self.open_transaction(match self {
            Conn::Lite(_) => "BEGIN IMMEDIATE",
            Conn::Pg(_) => "BEGIN",
        })?;
        Ok(Tx { conn: self, open: true })
    }

    /// Starts a read transaction: every query in it sees the same state of the store.
    pub(crate) fn begin_read(&self) -> Result<Tx<'_>, StoreError> {
        self.open_transaction(match self {
            Conn::Lite(_) => "BEGIN DEFERRED",
            Conn::Pg(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        })?;
        Ok(Tx { conn: self, open: true })
    }

    /// Runs `begin` (statements that open a transaction); until [`Conn::close_transaction`],
    /// a lost connection is not opened again behind the transaction's back.
    pub(crate) fn open_transaction(&self, begin: &str) -> Result<(), StoreError> {
        self.batch(begin)?;
        if let Conn::Pg(c) = self {
            c.in_transaction.set(true);
        }
        Ok(())
    }

    /// Ends the transaction with `end` (`COMMIT` or `ROLLBACK`).
    pub(crate) fn close_transaction(&self, end: &str) -> Result<(), StoreError> {
        let ended = self.batch(end);
        if let Conn::Pg(c) = self {
            c.in_transaction.set(false);
        }
        ended
    }
}

/// An open transaction; dropping it rolls back.
pub(crate) struct Tx<'c> {
    conn: &'c Conn,
    open: bool,
}

impl Tx<'_> {
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.open = false;
        let committed = self.conn.close_transaction("COMMIT");
        if committed.is_err() {
            let _ = self.conn.close_transaction("ROLLBACK");
        }
        committed
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.close_transaction("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_markers_become_dollars_outside_quoted_text() {
        assert_eq!(numbered_to_dollar("a = ?1 AND b = '?x' AND c = ?12"), "a = $1 AND b = '?x' AND c = $12");
    }

    #[test]
    fn a_connection_the_server_closed_is_opened_again_but_never_inside_a_transaction() {
        let (_server, cluster) = tam_testkit::postgres::cluster();
        let url = tam_testkit::postgres::create_database(&cluster);
        let (store, admin) = (crate::Store::connect(&url).unwrap(), crate::Store::connect(&url).unwrap());
        let kill = |victim: &Conn| {
            let pid: i64 = victim.row("SELECT pg_backend_pid()", &[], |r| r.get(0)).unwrap().unwrap();
            admin.conn.row("SELECT pg_terminate_backend(?1)", &args![pid], |_| Ok(())).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        kill(&store.conn);
        // The statement that meets the loss may fail; the next one runs on a new connection.
        let _ = store.tenant_ids();
        assert!(store.tenant_ids().is_ok());

        let tx = store.conn.begin().unwrap();
        tx.execute("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', 0)", &[]).unwrap();
        kill(&store.conn);
        let after = tx.execute("INSERT INTO tenants (id, name, created_at) VALUES ('u', 'u', 0)", &[]);
        assert!(after.is_err(), "no statement of a transaction runs on a connection the transaction is not on");
        drop(tx);
        assert_eq!(store.tenant_ids().unwrap(), Vec::<tam_core::TenantId>::new(), "the transaction left nothing");
    }

    #[test]
    fn placeholders_number_every_value_of_every_row() {
        assert_eq!(placeholders(2, 3), "(?1, ?2, ?3), (?4, ?5, ?6)");
    }

    #[test]
    fn index_hints_are_dropped_for_postgres() {
        assert_eq!(
            without_index_hints("SELECT id FROM tickets INDEXED BY tickets_by_account WHERE x = 1"),
            "SELECT id FROM tickets WHERE x = 1"
        );
        assert_eq!(without_index_hints("SELECT 1"), "SELECT 1");
    }
}
