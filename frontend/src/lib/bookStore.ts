"use client";

import { useEffect, useState } from "react";
import { OrderBook, type DepthSnapshot, type DepthUpdate } from "./book";
import { feed } from "./feed";

/** Counters the browser test reads: how many depth messages came and how many renders. */
export const bookStats = { updates: 0, renders: 0, gaps: 0 };

declare global {
  interface Window {
    __xch?: { feed: typeof feed; book: typeof bookStats };
  }
}

if (typeof window !== "undefined") window.__xch = { feed, book: bookStats };

/**
 * The book of one market, kept from `depth@MARKET`. Messages are applied as they come, but
 * React renders at most once per animation frame, and then the latest state: at 100 updates
 * a second the page draws ~60 frames, not 100 renders that pile up.
 */
export function useOrderBook(market: string): { book: OrderBook; version: number } {
  const [book] = useState(() => new OrderBook());
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const stream = `depth@${market}`;
    let frame: number | null = null;
    const draw = () => {
      frame = null;
      bookStats.renders += 1;
      setVersion((v) => v + 1);
    };
    book.reset();
    const unsubscribe = feed.subscribe(stream, (data) => {
      const message = data as DepthSnapshot | DepthUpdate;
      bookStats.updates += 1;
      if (message.type === "snapshot") book.snapshot(message);
      else if (book.update(message) === "gap") {
        bookStats.gaps += 1;
        feed.resync(stream);
      }
      frame ??= requestAnimationFrame(draw);
    });
    return () => {
      unsubscribe();
      if (frame !== null) cancelAnimationFrame(frame);
    };
  }, [market, book]);
  return { book, version };
}
