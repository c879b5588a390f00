CREATE TABLE notes (
    id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    body text NOT NULL
);
