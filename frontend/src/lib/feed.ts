// The one WebSocket connection of the page. Components subscribe to stream names
// ("depth@btc-usd", "orders", ...) with a handler; the feed multiplexes them onto a single
// socket, reconnects with backoff, re-authenticates and resubscribes after a reconnect (every
// subscription starts again with a snapshot), and lets a consumer resync one stream after a
// sequence gap by subscribing to it afresh.

export type Handler = (data: unknown) => void;
export type Status = "connecting" | "open" | "closed";

interface Message {
  stream?: string;
  data?: unknown;
  id?: number;
  error?: { code: number; msg: string };
  event?: string;
}

const MAX_BACKOFF_MS = 5000;

export class Feed {
  private socket: WebSocket | null = null;
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly statusListeners = new Set<(status: Status) => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private token: string | null = null;
  private user: string | null = null;
  private authExpired = false;
  private readonly authExpiredListeners = new Set<() => void>();
  private nextId = 1;
  private attempts = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private everOpened = false;
  status: Status = "closed";
  /** Messages received, for the browser test's throughput figures. */
  messages = 0;

  constructor(private readonly url: () => string) {}

  subscribe(stream: string, handler: Handler): () => void {
    let set = this.handlers.get(stream);
    if (!set) {
      set = new Set();
      this.handlers.set(stream, set);
      this.send("SUBSCRIBE", [stream]);
    }
    set.add(handler);
    this.ensureOpen();
    return () => {
      const current = this.handlers.get(stream);
      if (!current) return;
      current.delete(handler);
      if (current.size === 0) {
        this.handlers.delete(stream);
        this.send("UNSUBSCRIBE", [stream]);
      }
    };
  }

  /** Ask for a fresh snapshot of `stream` (after a gap): the server sends one on SUBSCRIBE. */
  resync(stream: string): void {
    if (!this.handlers.has(stream)) return;
    this.send("UNSUBSCRIBE", [stream]);
    this.send("SUBSCRIBE", [stream]);
  }

  /** The access token for private streams. A refreshed token of the same user authenticates
   * the open connection again (ws keeps private streams only while their token is valid);
   * another user (or none) starts a new connection. */
  setToken(token: string | null, user: string | null): void {
    const sameUser = user === this.user;
    const hadUser = this.user !== null;
    this.token = token;
    this.user = user;
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    if (!sameUser && hadUser) {
      this.socket.close();
      return;
    }
    if (!token) return;
    this.send("AUTH", { token });
    if (this.authExpired) {
      // ws unsubscribed the private streams when the old token expired.
      const privateStreams = [...this.handlers.keys()].filter((stream) => !stream.includes("@"));
      if (privateStreams.length) this.send("SUBSCRIBE", privateStreams);
      this.authExpired = false;
    }
  }

  /** Called when ws ended the private streams because the token expired. */
  onAuthExpired(listener: () => void): () => void {
    this.authExpiredListeners.add(listener);
    return () => this.authExpiredListeners.delete(listener);
  }

  onStatus(listener: (status: Status) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Called when what the streams carried may have been missed: after a reconnect, and after
   * the server dropped this client's queue (a `resync` notice; fresh snapshots follow). */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  private setStatus(status: Status): void {
    this.status = status;
    for (const listener of this.statusListeners) listener(status);
  }

  private send(method: string, params: unknown): void {
    if (this.socket?.readyState !== WebSocket.OPEN) return; // sent on (re)connect instead
    this.socket.send(JSON.stringify({ method, params, id: this.nextId++ }));
  }

  private ensureOpen(): void {
    if (this.socket || this.timer) return;
    this.setStatus("connecting");
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.onopen = () => {
      this.authExpired = false;
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.attempts = 0;
      // Requests are answered in order, so AUTH is done before the private subscriptions.
      if (this.token) this.send("AUTH", { token: this.token });
      if (this.handlers.size) this.send("SUBSCRIBE", [...this.handlers.keys()]);
      this.setStatus("open");
      if (reconnected) for (const listener of this.reconnectListeners) listener();
    };
    socket.onmessage = (event) => this.receive(event.data as string);
    socket.onclose = () => {
      this.socket = null;
      this.setStatus("closed");
      if (this.handlers.size) this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** this.attempts);
    this.attempts += 1;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.ensureOpen();
    }, delay);
  }

  private receive(raw: string): void {
    this.messages += 1;
    const message = JSON.parse(raw) as Message;
    if (message.stream !== undefined) {
      const set = this.handlers.get(message.stream);
      if (set) for (const handler of set) handler(message.data);
    } else if (message.event === "auth_expired") {
      this.authExpired = true;
      for (const listener of this.authExpiredListeners) listener();
    } else if (message.event === "resync") {
      for (const listener of this.reconnectListeners) listener();
    } else if (message.error) {
      console.warn("ws request refused:", message.error.msg);
    }
  }
}

function defaultUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

export const feed = new Feed(defaultUrl);
