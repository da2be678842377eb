"use client";

import { useEffect, useRef, useState, useSyncExternalStore } from "react";
import { api, refresh, type Balance, type Market } from "./api";
import { feed } from "./feed";
import { getSession, onSession, type Session } from "./session";

export function useSession(): Session | null {
  return useSyncExternalStore(onSession, getSession, () => null);
}

const EARLY_REFRESH_MS = 60_000;

/** Keeps the feed's token in step with the session (private streams follow the user), and
 * the session fresh: the token is refreshed a minute before it expires, since a page that
 * only listens to the WebSocket makes no request that would find it expired, and ws ends the
 * private streams of an expired token (`auth_expired`). */
export function useFeedAuth(): void {
  const session = useSession();
  useEffect(
    () => feed.setToken(session?.access_token ?? null, session?.user_id ?? null),
    [session?.access_token, session?.user_id],
  );
  const expiresAt = session?.expires_at;
  useEffect(() => {
    if (expiresAt === undefined) return;
    const timer = setTimeout(() => void refresh(), Math.max(0, expiresAt - Date.now() - EARLY_REFRESH_MS));
    const stop = feed.onAuthExpired(() => void refresh());
    return () => {
      clearTimeout(timer);
      stop();
    };
  }, [expiresAt]);
}

/** Calls `handler` with each message of `stream` while mounted (null: none). */
export function useStream<T>(stream: string | null, handler: (data: T) => void): void {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    if (!stream) return;
    return feed.subscribe(stream, (data) => ref.current(data as T));
  }, [stream]);
}

/** Runs `load` on mount, when `deps` change and after the feed reconnects. */
export function useReload(load: () => void, deps: unknown[]): void {
  const ref = useRef(load);
  ref.current = load;
  useEffect(() => {
    ref.current();
    return feed.onReconnect(() => ref.current());
  }, deps);
}

let marketsPromise: Promise<Market[]> | null = null;

export function useMarkets(): Market[] | null {
  const [markets, setMarkets] = useState<Market[] | null>(null);
  useEffect(() => {
    marketsPromise ??= api.markets().catch((error) => {
      marketsPromise = null;
      throw error;
    });
    marketsPromise.then(setMarkets, () => setMarkets([]));
  }, []);
  return markets;
}

interface BalancesMessage {
  balances: Record<string, { free: string; locked: string }>;
}

/** The user's balances: loaded once, then kept by the `balances` stream (changed assets). */
export function useBalances(): Record<string, Balance> {
  const session = useSession();
  const [balances, setBalances] = useState<Record<string, Balance>>({});
  useReload(() => {
    if (!session) {
      setBalances({});
      return;
    }
    api.balances().then(
      (list) => setBalances(Object.fromEntries(list.map((b) => [b.asset, b]))),
      () => undefined,
    );
  }, [session?.user_id]);
  useStream<BalancesMessage>(session ? "balances" : null, (message) => {
    setBalances((current) => {
      const next = { ...current };
      for (const [asset, value] of Object.entries(message.balances)) {
        next[asset] = { asset, ...value };
      }
      return next;
    });
  });
  return balances;
}
