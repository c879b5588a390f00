// The seed's stack answering the bench's three loads (bench/wrk.lua) on the same
// database file: GET /posts/{id}, GET /posts?limit=20 and POST /posts, with
// node:http and Drizzle queries. No authentication: the bench's token is
// ignored and posts are written as the first admin. One process, as the seed
// runs it. Settings: DATABASE_URL, BIND (host:port), SQLITE_SYNCHRONOUS.
import http from "node:http";
import { and, asc, desc, eq, isNotNull, lt, lte } from "drizzle-orm";
import { db } from "./db";
import { posts, users } from "./schema";

type Post = typeof posts.$inferSelect;

const admin = db.select({ id: users.id }).from(users).where(eq(users.role, "admin"))
  .orderBy(asc(users.id)).limit(1).get();
if (!admin) throw new Error("no admin to write posts as");

const view = (p: Post) => ({
  id: p.id,
  title: p.title,
  content: p.content,
  authorId: p.authorId,
  publishedAt: p.publishedAt ? p.publishedAt.toISOString().replace(".000Z", "Z") : null,
});

const published = () => and(isNotNull(posts.publishedAt), lte(posts.publishedAt, new Date()));

function send(res: http.ServerResponse, status: number, body?: unknown) {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  const one = url.pathname.match(/^\/posts\/(\d+)$/);
  if (req.method === "GET" && one) {
    const post = db.select().from(posts).where(and(eq(posts.id, Number(one[1])), published())).get();
    return post ? send(res, 200, view(post)) : send(res, 404);
  }
  if (req.method === "GET" && url.pathname === "/posts") {
    const limit = Math.min(Math.max(Number(url.searchParams.get("limit") ?? 20) || 20, 1), 100);
    // Below a cursor (none yet: the largest id), as the real service pages: without
    // it SQLite sorts every published post through their index.
    const items = db.select().from(posts).where(and(lt(posts.id, Number.MAX_SAFE_INTEGER), published()))
      .orderBy(desc(posts.id)).limit(limit).all();
    return send(res, 200, { items: items.map(view), nextCursor: items.length ? String(items[items.length - 1].id) : null });
  }
  if (req.method === "POST" && url.pathname === "/posts") {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      try {
        const input = JSON.parse(body);
        const post = db.insert(posts).values({
          title: input.title,
          content: input.content,
          authorId: admin.id,
          publishedAt: input.publishedAt ? new Date(input.publishedAt) : null,
        }).returning().get();
        send(res, 201, view(post));
      } catch (err) {
        send(res, 422, { detail: String(err) });
      }
    });
    return;
  }
  send(res, 404);
});

const [host, port] = (process.env.BIND ?? "127.0.0.1:8092").split(":");
server.listen(Number(port), host);
