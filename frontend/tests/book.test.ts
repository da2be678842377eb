import { describe, expect, it } from "vitest";
import { OrderBook, cumulative, depthWindow, group, type Level } from "@/lib/book";

function snapshot(id: number, bids: Level[], asks: Level[]) {
  return { type: "snapshot" as const, last_update_id: id, bids, asks };
}

function update(first: number, last: number, bids: Level[], asks: Level[] = []) {
  return { type: "update" as const, first_update_id: first, last_update_id: last, bids, asks };
}

describe("order book diffs", () => {
  it("sorts bids down and asks up, by value not by text", () => {
    const book = new OrderBook();
    book.snapshot(snapshot(5, [["9.50", "1"], ["10.00", "2"], ["100.00", "3"]], [
      ["101.00", "1"], ["1000.00", "2"], ["200.00", "1"],
    ]));
    expect(book.bids.levels(10).map((l) => l[0])).toEqual(["100.00", "10.00", "9.50"]);
    expect(book.asks.levels(2).map((l) => l[0])).toEqual(["101.00", "200.00"]);
  });

  it("applies continuing updates: change, add, remove", () => {
    const book = new OrderBook();
    book.snapshot(snapshot(10, [["100.00", "1.0000"]], [["101.00", "2.0000"]]));
    expect(book.update(update(11, 12, [["100.00", "0.5000"], ["99.00", "3.0000"]]))).toBe("applied");
    expect(book.update(update(13, 13, [], [["101.00", "0.0000"]]))).toBe("applied");
    expect(book.bids.levels(5)).toEqual([["100.00", "0.5000"], ["99.00", "3.0000"]]);
    expect(book.asks.levels(5)).toEqual([]);
    expect(book.lastUpdateId).toBe(13);
  });

  it("drops updates the snapshot already holds", () => {
    const book = new OrderBook();
    book.snapshot(snapshot(10, [["100.00", "1"]], []));
    expect(book.update(update(9, 10, [["100.00", "5"]]))).toBe("stale");
    expect(book.bids.levels(1)).toEqual([["100.00", "1"]]);
  });

  it("detects a gap and stays unsynced until a snapshot", () => {
    const book = new OrderBook();
    expect(book.update(update(1, 1, [["1.00", "1"]]))).toBe("unsynced");
    book.snapshot(snapshot(10, [["100.00", "1"]], []));
    expect(book.update(update(12, 12, [["100.00", "2"]]))).toBe("gap");
    expect(book.synced).toBe(false);
    expect(book.update(update(13, 13, [["100.00", "3"]]))).toBe("unsynced");
    book.snapshot(snapshot(13, [["100.00", "3"]], []));
    expect(book.update(update(14, 14, [["100.00", "4"]]))).toBe("applied");
    expect(book.bids.levels(1)).toEqual([["100.00", "4"]]);
  });

  it("treats 100.0 and 100.00 as one level", () => {
    const book = new OrderBook();
    book.snapshot(snapshot(1, [["100.00", "1"]], []));
    book.update(update(2, 2, [["100.0", "0"]]));
    expect(book.bids.levels(5)).toEqual([]);
  });
});

describe("grouping and totals", () => {
  it("groups bids down and asks up by a price step", () => {
    const bids: Level[] = [["100.75", "1"], ["100.20", "2"], ["99.90", "0.5"]];
    expect(group(bids, "1", "bid")).toEqual([["100.00", "3"], ["99.00", "0.5"]]);
    const asks: Level[] = [["100.01", "1"], ["100.99", "2"], ["101.50", "0.25"]];
    expect(group(asks, "1", "ask")).toEqual([["101.00", "3"], ["102.00", "0.25"]]);
  });

  it("sums quantities exactly", () => {
    expect(group([["1.00", "0.1"], ["1.00", "0.2"]], "0.01", "bid")).toEqual([["1.00", "0.3"]]);
    expect(cumulative([["3", "0.1"], ["2", "0.2"], ["1", "0.0001"]])).toEqual(["0.1", "0.3", "0.3001"]);
  });
});

describe("the depth chart's window", () => {
  it("keeps the levels within the range of the mid and leaves a far order out", () => {
    const bids: Level[] = [["99.5", "1"], ["99.0", "2"], ["90.0", "50"]];
    const asks: Level[] = [["100.5", "1"], ["101.0", "2"], ["150.0", "50"]];
    const view = depthWindow(bids, asks, 0.01)!;
    expect([view.low, view.high]).toEqual([99, 101]);
    expect(view.bids).toEqual([["99.5", "1"], ["99.0", "2"]]);
    expect(view.asks).toEqual([["100.5", "1"], ["101.0", "2"]]);
  });

  it("widens to show both best levels when the spread is wider than the range", () => {
    const view = depthWindow([["90", "1"]], [["110", "1"], ["120", "1"]], 0.01)!;
    expect([view.low, view.high]).toEqual([80, 120]);
    expect(view.bids).toEqual([["90", "1"]]);
    expect(view.asks).toEqual([["110", "1"], ["120", "1"]]);
  });

  it("centres a one-sided book on its best price, and has nothing to show for an empty one", () => {
    const view = depthWindow([], [["200", "1"], ["203", "1"]], 0.01)!;
    expect([view.low, view.high]).toEqual([198, 202]);
    expect(view.asks).toEqual([["200", "1"]]);
    expect(depthWindow([], [], 0.01)).toBeNull();
  });
});
