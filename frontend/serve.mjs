// One origin for the browser: the static export from out/, /api/ proxied to the api and /ws
// (a WebSocket upgrade) proxied to ws. The pages call /api/v1 and /ws on their own origin, so
// this is what local mode and the browser tests serve them with; in Kubernetes the ingress
// does the same routing. Node's standard library only.
//
//   node serve.mjs --port 3000 --api http://127.0.0.1:8000 --ws http://127.0.0.1:8090

import { createReadStream, statSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values: options } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "3000" },
    api: { type: "string", default: "http://127.0.0.1:8000" },
    ws: { type: "string", default: "http://127.0.0.1:8090" },
    root: { type: "string", default: path.join(path.dirname(fileURLToPath(import.meta.url)), "out") },
  },
});

const root = path.resolve(options.root);
const api = new URL(options.api);
const ws = new URL(options.ws);

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
};

function file(pathname) {
  const resolved = path.resolve(root, `.${decodeURIComponent(pathname)}`);
  if (resolved !== root && !resolved.startsWith(root + path.sep)) return null;
  for (const candidate of [resolved, path.join(resolved, "index.html"), `${resolved}.html`]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // try the next form of the path
    }
  }
  return null;
}

function serveStatic(request, response) {
  const { pathname } = new URL(request.url, "http://x");
  const found = file(pathname) ?? file("/404.html");
  const status = found && !found.endsWith("404.html") ? 200 : 404;
  if (!found) {
    response.writeHead(404).end("not found");
    return;
  }
  // Hashed assets never change; pages must be revalidated so a new build is picked up.
  const immutable = pathname.startsWith("/_next/static/");
  response.writeHead(status, {
    "Content-Type": TYPES[path.extname(found)] ?? "application/octet-stream",
    "Cache-Control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
  });
  createReadStream(found).pipe(response);
}

function proxy(request, response) {
  const upstream = http.request(
    {
      host: api.hostname,
      port: api.port,
      method: request.method,
      path: request.url,
      headers: { ...request.headers, host: api.host },
    },
    (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    },
  );
  upstream.on("error", () => {
    if (!response.headersSent) {
      response.writeHead(502, { "Content-Type": "application/json" });
    }
    response.end(JSON.stringify({ code: "bad_gateway", message: "the api is not reachable" }));
  });
  request.pipe(upstream);
}

const server = http.createServer((request, response) => {
  if (request.url.startsWith("/api/")) proxy(request, response);
  else serveStatic(request, response);
});

// A WebSocket is an HTTP upgrade: forward the request head, then splice the two sockets.
server.on("upgrade", (request, socket, head) => {
  if (!request.url.startsWith("/ws")) {
    socket.destroy();
    return;
  }
  const upstream = net.connect(Number(ws.port), ws.hostname, () => {
    const lines = [`${request.method} ${request.url} HTTP/1.1`];
    for (let i = 0; i < request.rawHeaders.length; i += 2) {
      const name = request.rawHeaders[i];
      lines.push(`${name}: ${name.toLowerCase() === "host" ? ws.host : request.rawHeaders[i + 1]}`);
    }
    upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (head.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.setNoDelay(true);
  socket.setNoDelay(true);
  const close = () => {
    upstream.destroy();
    socket.destroy();
  };
  upstream.on("error", close);
  socket.on("error", close);
  upstream.on("close", close);
  socket.on("close", close);
});

server.listen(Number(options.port), options.host, () => {
  console.log(`frontend on http://${options.host}:${options.port} (api ${api.origin}, ws ${ws.origin})`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
