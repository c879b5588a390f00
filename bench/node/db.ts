// The seed's lib/db/index.ts: its connection setup and pragmas. `synchronous`
// follows SQLITE_SYNCHRONOUS so that the bench compares servers at the same
// durability; the seed's own value, NORMAL, is the default.
import Database from "better-sqlite3";
import { drizzle } from "drizzle-orm/better-sqlite3";
import * as schema from "./schema";

const sqlite = new Database(process.env.DATABASE_URL ?? "./data/app.db");
sqlite.pragma("journal_mode = WAL");
sqlite.pragma("busy_timeout = 5000");
sqlite.pragma(`synchronous = ${process.env.SQLITE_SYNCHRONOUS ?? "NORMAL"}`);
sqlite.pragma("foreign_keys = ON");

export const db = drizzle(sqlite, { schema });
