import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Feed } from "@/lib/feed";

/** A stand-in for the browser's WebSocket: records what is sent, opens and closes on demand. */
class FakeSocket {
  static readonly OPEN = 1;
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: { method: string; params: unknown }[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }

  send(text: string) {
    const { method, params } = JSON.parse(text);
    this.sent.push({ method, params });
  }

  open() {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }

  close() {
    this.readyState = 3;
    this.onclose?.();
  }

  deliver(message: unknown) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.stubGlobal("WebSocket", FakeSocket);
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("the page's WebSocket", () => {
  it("opens one socket for all streams and subscribes once it is open", () => {
    const feed = new Feed(() => "ws://test/ws");
    feed.setToken("jwt", "7");
    const seen: unknown[] = [];
    feed.subscribe("depth@btc-usd", (data) => seen.push(data));
    feed.subscribe("orders", () => undefined);
    expect(FakeSocket.all).toHaveLength(1);
    const socket = FakeSocket.all[0];
    socket.open();
    expect(socket.sent).toEqual([
      { method: "AUTH", params: { token: "jwt" } },
      { method: "SUBSCRIBE", params: ["depth@btc-usd", "orders"] },
    ]);
    socket.deliver({ stream: "depth@btc-usd", data: { type: "snapshot" } });
    socket.deliver({ stream: "trade@btc-usd", data: {} });
    expect(seen).toEqual([{ type: "snapshot" }]);
    expect(feed.messages).toBe(2);
  });

  it("subscribes and unsubscribes with the first and the last handler of a stream", () => {
    const feed = new Feed(() => "ws://test/ws");
    const first = feed.subscribe("trade@btc-usd", () => undefined);
    const socket = FakeSocket.all[0];
    socket.open();
    const second = feed.subscribe("trade@btc-usd", () => undefined);
    first();
    expect(socket.sent).toEqual([{ method: "SUBSCRIBE", params: ["trade@btc-usd"] }]);
    second();
    expect(socket.sent.at(-1)).toEqual({ method: "UNSUBSCRIBE", params: ["trade@btc-usd"] });
  });

  it("reconnects with backoff, resubscribes and says what may have been missed", () => {
    const feed = new Feed(() => "ws://test/ws");
    const missed = vi.fn();
    feed.onReconnect(missed);
    feed.subscribe("depth@btc-usd", () => undefined);
    FakeSocket.all[0].open();
    FakeSocket.all[0].close();
    expect(feed.status).toBe("closed");
    vi.advanceTimersByTime(249);
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.all[1].close(); // refused: the next try waits twice as long
    vi.advanceTimersByTime(499);
    expect(FakeSocket.all).toHaveLength(2);
    vi.advanceTimersByTime(1);
    FakeSocket.all[2].open();
    expect(FakeSocket.all[2].sent).toEqual([{ method: "SUBSCRIBE", params: ["depth@btc-usd"] }]);
    expect(missed).toHaveBeenCalledTimes(1);
    FakeSocket.all[2].deliver({ event: "resync", reason: "slow_consumer", streams: [] });
    expect(missed).toHaveBeenCalledTimes(2);
  });

  it("resubscribes one stream for a fresh snapshot after a gap", () => {
    const feed = new Feed(() => "ws://test/ws");
    feed.subscribe("depth@btc-usd", () => undefined);
    const socket = FakeSocket.all[0];
    socket.open();
    feed.resync("depth@btc-usd");
    expect(socket.sent.slice(1)).toEqual([
      { method: "UNSUBSCRIBE", params: ["depth@btc-usd"] },
      { method: "SUBSCRIBE", params: ["depth@btc-usd"] },
    ]);
  });

  it("authenticates again with a refreshed token, starts a new connection for another user", () => {
    const feed = new Feed(() => "ws://test/ws");
    feed.subscribe("balances", () => undefined);
    const socket = FakeSocket.all[0];
    socket.open();
    feed.setToken("first", "7");
    expect(socket.sent.at(-1)).toEqual({ method: "AUTH", params: { token: "first" } });
    feed.setToken("refreshed", "7");
    expect(socket.readyState).toBe(FakeSocket.OPEN);
    expect(socket.sent.at(-1)).toEqual({ method: "AUTH", params: { token: "refreshed" } });
    feed.setToken("other", "8");
    expect(socket.readyState).toBe(3);
    vi.advanceTimersByTime(250);
    FakeSocket.all[1].open();
    expect(FakeSocket.all[1].sent[0]).toEqual({ method: "AUTH", params: { token: "other" } });
  });

  it("asks for a fresh token when ws ends the private streams, then subscribes them again", () => {
    const feed = new Feed(() => "ws://test/ws");
    const expired = vi.fn();
    feed.onAuthExpired(expired);
    feed.setToken("old", "7");
    feed.subscribe("orders", () => undefined);
    feed.subscribe("depth@btc-usd", () => undefined);
    const socket = FakeSocket.all[0];
    socket.open();
    socket.deliver({ event: "auth_expired", streams: ["orders"] });
    expect(expired).toHaveBeenCalledTimes(1);
    feed.setToken("new", "7");
    expect(socket.sent.slice(-2)).toEqual([
      { method: "AUTH", params: { token: "new" } },
      { method: "SUBSCRIBE", params: ["orders"] },
    ]);
  });
});
