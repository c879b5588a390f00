//! SQL text with its parameters, written once for both backends: the placeholder
//! (`?` on SQLite, `$n` on PostgreSQL) is chosen as each value is bound, and the
//! values travel as parameters, never inside the text.

use db::{Connection, MultiBackend};
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{BigInt, Nullable, Text};

/// One parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// A statement being built.
#[derive(Debug, Clone)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
    postgres: bool,
}

impl Sql {
    pub fn new(postgres: bool) -> Self {
        Self {
            text: String::new(),
            binds: Vec::new(),
            postgres,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        if self.postgres {
            let n = self.binds.len();
            self.text.push_str(&format!("${n}"));
        } else {
            self.text.push('?');
        }
        self
    }

    /// The statement with its parameters bound, ready to load rows of `R`.
    pub fn query(&self) -> BoxedSqlQuery<'static, MultiBackend, diesel::query_builder::SqlQuery> {
        let mut query = diesel::sql_query(self.text.clone()).into_boxed::<MultiBackend>();
        for value in &self.binds {
            query = match value {
                Bind::Text(text) => query.bind::<Text, _>(text.clone()),
                Bind::Int(number) => query.bind::<BigInt, _>(*number),
            };
        }
        query
    }

    pub fn load<R>(&self, conn: &mut Connection) -> QueryResult<Vec<R>>
    where
        R: QueryableByName<MultiBackend> + 'static,
    {
        self.query().load(conn)
    }
}

/// A double-quoted identifier, which both backends read.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Up to [`CELLS`] values of one row, each as the text of the stored value
/// (`CAST(... AS TEXT)`) or NULL: every table is read through this one shape.
#[derive(Debug, Clone, QueryableByName)]
pub struct Cells {
    #[diesel(sql_type = Nullable<Text>)]
    c0: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c1: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c2: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c3: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c4: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c5: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c6: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c7: Option<String>,
}

/// How many columns [`Cells`] holds.
pub const CELLS: usize = 8;

impl Cells {
    /// The first `n` values.
    pub fn take(self, n: usize) -> Vec<Option<String>> {
        let all = [
            self.c0, self.c1, self.c2, self.c3, self.c4, self.c5, self.c6, self.c7,
        ];
        all.into_iter().take(n).collect()
    }
}
