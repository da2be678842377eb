// The browser test: Debian's Chromium, driven by playwright-core, against a running stack
// served on one origin (serve.mjs in front of the api and ws). tests/frontend/test_browser.py
// starts that stack and runs this script; it exits non-zero on the first failed check.
//
// Environment: BASE_URL (the frontend origin), API_URL (the api itself, for the other traders),
// MARKET, SCREENSHOTS (folder for the PNGs), FIGURES (file for the measured figures, JSON).

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import readline from "node:readline";

import { openBrowser } from "./browser.mjs";

const BASE = process.env.BASE_URL;
const API = process.env.API_URL;
const MARKET = process.env.MARKET ?? "btc-usd";
const SCREENSHOTS = process.env.SCREENSHOTS;
const FIGURES = process.env.FIGURES;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 15_000;
const figures = {};
const stdin = readline.createInterface({ input: process.stdin });
const stdinLines = stdin[Symbol.asyncIterator]();
const started = Date.now();

function step(name) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${name}`);
}

// ---- other traders, straight through the api --------------------------------------------

async function call(token, method, route, body) {
  const response = await fetch(`${API}/api/v1${route}`, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(payload)}`);
  return payload;
}

async function trader(funds) {
  const email = `t${Date.now()}${Math.random().toString(16).slice(2, 8)}@example.com`;
  const { access_token: token, user_id: user } = await call(null, "POST", "/signup", {
    email,
    password: "correct horse battery",
  });
  for (const [asset, amount] of Object.entries(funds)) {
    await call(token, "POST", "/faucet", { asset, amount });
  }
  return { token, user };
}

const limit = ({ token }, side, price, quantity) =>
  call(token, "POST", "/order", { market: MARKET, side, type: "limit", price, quantity });

// ---- the browser ------------------------------------------------------------------------

const { page, problems, close } = await openBrowser(CHROMIUM, TIMEOUT);
// Failed requests are problems, except the refusal the test provokes on purpose.
let expectRefusal = false;
page.on("response", (response) => {
  if (response.status() < 400) return;
  const refused = expectRefusal && response.url().endsWith("/api/v1/order");
  if (!refused) problems.push(`${response.status()} ${response.request().method()} ${response.url()}`);
});

async function shot(name, fullPage = false) {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage });
}

const text = (selector) => page.locator(selector).first().innerText();

async function waitText(selector, predicate, what) {
  const deadline = Date.now() + TIMEOUT;
  let last = "";
  while (Date.now() < deadline) {
    last = await page.locator(selector).first().innerText().catch(() => "");
    if (predicate(last)) return last;
    await page.waitForTimeout(50);
  }
  throw new Error(`${what}: ${selector} still shows ${JSON.stringify(last)}`);
}

try {
  step("liquidity from a market maker, through the api");
  const maker = await trader({ BTC: "10", USD: "100000" });
  for (let i = 0; i < 8; i++) {
    await limit(maker, "buy", (29890 - i * 10).toFixed(2), "0.0500");
    await limit(maker, "sell", (30010 + i * 10).toFixed(2), "0.0500");
  }
  const taker = await trader({ BTC: "10", USD: "100000" });
  await call(taker.token, "POST", "/order", { market: MARKET, side: "buy", type: "market", quantity: "0.0200" });

  step("sign up in the browser");
  const email = `browser${Date.now()}@example.com`;
  await page.goto(`${BASE}/signup/`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", "correct horse battery");
  await page.click("button[type=submit]");
  await page.waitForURL("**/balances/");
  await page.locator("[data-testid=user-email]").waitFor();

  step("demo funds from the faucet");
  await page.selectOption("[data-testid=faucet] select", "USD");
  await page.fill("[data-testid=faucet] input[name=amount]", "100000");
  await page.click("[data-testid=faucet] button[type=submit]");
  await waitText("tr[data-asset=USD] td:nth-child(2)", (t) => t === "100,000.000000", "USD balance");

  step("open the trading page");
  const navigation = Date.now();
  await page.goto(`${BASE}/trade/?market=${MARKET}`);
  await page.waitForSelector("body[data-ready]");
  const ready = Number(await page.getAttribute("body", "data-ready"));
  figures.interactive_ms = ready;
  figures.interactive_wall_ms = Date.now() - navigation;
  assert.ok(ready < 2000, `the trading page became interactive after ${ready} ms`);
  await page.locator("[data-testid=bids] tr[data-price='29890.00']").waitFor();
  await page.locator("[data-testid=asks] tr[data-price='30010.00']").waitFor();
  await waitText("[data-testid=available]", (t) => t.startsWith("100,000"), "available USD");

  step("place a limit buy");
  const volumeBefore = await text("[data-testid=candle-volume]");
  await page.click("[data-testid=order-form] button[aria-pressed]:has-text('buy')");
  await page.fill("[data-testid=order-form] input[name=price]", "29950.00");
  await page.fill("[data-testid=order-form] input[name=amount]", "0.0100");
  await waitText("[data-testid=total]", (t) => t.startsWith("299.500000"), "order total");
  await page.click("[data-testid=order-form] button[type=submit]");
  const openRow = page.locator("[data-testid=user-orders] tr[data-status=new]");
  await openRow.waitFor();
  assert.match(await openRow.innerText(), /29,950\.00/);
  await page.locator("[data-testid=bids] tr[data-price='29950.00']").waitFor();
  await waitText("[data-testid=locked-USD]", (t) => t === "299.500000", "locked USD");
  await shot("trading-open-order");

  step("a second user crosses it through the api");
  const seller = await trader({ BTC: "1" });
  await limit(seller, "sell", "29950.00", "0.0100");
  await page.locator("[data-testid=trades] tr", { hasText: "29,950.00" }).first().waitFor();
  await waitText("[data-testid=candle-close]", (t) => t === "29,950.00", "candle close");
  await waitText("[data-testid=candle-volume]", (t) => t !== volumeBefore, "candle volume");
  // The buyer pays the maker fee (10 bps) in BTC: 0.01 - 0.00001.
  await waitText("[data-testid=free-BTC]", (t) => t === "0.00999000", "BTC balance");
  await waitText("[data-testid=locked-USD]", (t) => t === "0.000000", "USD unlocked");
  await page.locator("[data-testid=bids] tr[data-price='29950.00']").waitFor({ state: "detached" });
  await openRow.waitFor({ state: "detached" });

  step("cancel an order");
  await page.fill("[data-testid=order-form] input[name=price]", "29940.00");
  await page.fill("[data-testid=order-form] input[name=amount]", "0.0200");
  await page.click("[data-testid=order-form] button[type=submit]");
  await openRow.waitFor();
  await page.locator("[data-testid=bids] tr[data-price='29940.00']").waitFor();
  await shot("trading");
  await openRow.locator("button", { hasText: "Cancel" }).click();
  await openRow.waitFor({ state: "detached" });
  await page.locator("[data-testid=bids] tr[data-price='29940.00']").waitFor({ state: "detached" });
  await waitText("[data-testid=locked-USD]", (t) => t === "0.000000", "USD unlocked after cancel");
  await page.click("[data-testid=user-orders] [role=tab]:has-text('Order history')");
  await page.locator("[data-testid=user-orders] tr[data-status=canceled]").waitFor();
  await page.locator("[data-testid=user-orders] tr[data-status=filled]").waitFor();

  step("the WebSocket drops: the page reconnects and resubscribes");
  await page.evaluate(() => {
    window.__dropped = window.__xch.feed.socket;
    window.__dropped.close();
  });
  await page.waitForFunction(() => {
    const feed = window.__xch.feed;
    return feed.socket && feed.socket !== window.__dropped && feed.status === "open";
  });
  await limit(maker, "buy", "29930.00", "0.0100");
  await page.locator("[data-testid=bids] tr[data-price='29930.00']").waitFor();

  step("an api error is shown as such");
  expectRefusal = true;
  await page.fill("[data-testid=order-form] input[name=price]", "29940.00");
  await page.fill("[data-testid=order-form] input[name=amount]", "100.0000");
  await page.click("[data-testid=order-form] button[type=submit]");
  await waitText("[data-testid=order-error]", (t) => t.includes("insufficient_funds"), "api error");
  expectRefusal = false;

  step("a stop-limit order and an OCO list");
  // The last price is 29,950.00: a buy stop above it is a stop-loss, waiting and off the book.
  const form = "[data-testid=order-form]";
  await page.click("[data-testid=user-orders] [role=tab]:has-text('Open orders')");
  await page.click(`${form} [role=tab]:has-text('Stop limit')`);
  await page.fill(`${form} input[name=stop_price]`, "30500.00");
  await page.fill(`${form} input[name=price]`, "30600.00");
  await page.fill(`${form} input[name=amount]`, "0.0100");
  await page.click(`${form} button[type=submit]`);
  const stopRow = page.locator("[data-testid=user-orders] tr[data-status=waiting][data-type=stop_loss_limit]");
  await stopRow.waitFor();
  assert.match(await stopRow.locator("[data-testid=stop]").innerText(), /^30,500\.00 \(waiting\)$/);
  assert.match(await stopRow.innerText(), /30,600\.00/);
  await waitText("[data-testid=locked-USD]", (t) => t === "306.000000", "the stop-limit's lock");
  assert.equal(await page.locator("[data-testid=bids] tr[data-price='30600.00']").count(), 0);

  await page.click(`${form} [role=tab]:has-text('OCO')`);
  await page.fill(`${form} input[name=price]`, "29000.00");
  await page.fill(`${form} input[name=stop_price]`, "30400.00");
  await page.fill(`${form} input[name=stop_limit_price]`, "30450.00");
  await page.fill(`${form} input[name=amount]`, "0.0100");
  await page.click(`${form} button[type=submit]`);
  const legs = "[data-testid=user-orders] tr[data-list-id]";
  await page.waitForFunction((selector) => document.querySelectorAll(selector).length === 2, legs);
  const takeProfit = page.locator(`${legs}[data-status=new]`);
  assert.match(await takeProfit.innerText(), /post only\s*OCO/);
  assert.match(await takeProfit.innerText(), /29,000\.00/);
  const stopLoss = page.locator(`${legs}[data-type=stop_loss_limit]`);
  assert.match(await stopLoss.locator("[data-testid=stop]").innerText(), /^30,400\.00 \(waiting\)$/);
  assert.equal(
    await takeProfit.getAttribute("data-list-id"), await stopLoss.getAttribute("data-list-id"),
  );
  await page.locator("[data-testid=bids] tr[data-price='29000.00']").waitFor();
  // One lock for the list, the larger leg's: 0.01 x 30,450.00.
  await waitText("[data-testid=locked-USD]", (t) => t === "610.500000", "the list's lock");
  await shot("trading-stops");

  // Canceling one leg cancels the list.
  await takeProfit.locator("button", { hasText: "Cancel" }).click();
  await page.waitForFunction((selector) => document.querySelectorAll(selector).length === 0, legs);
  await stopRow.locator("button", { hasText: "Cancel" }).click();
  await stopRow.waitFor({ state: "detached" });
  await waitText("[data-testid=locked-USD]", (t) => t === "0.000000", "USD unlocked after the stops");
  await page.click(`${form} [role=tab]:text-is('Limit')`);

  step("100 book updates a second");
  figures.book = await burst();

  step("screenshots: light theme, phone width");
  await page.click("button[aria-label='Switch theme']");
  await shot("trading-light");
  await page.click("button[aria-label='Switch theme']");
  await page.setViewportSize({ width: 390, height: 844 });
  await shot("trading-phone", true);
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(`${BASE}/`);
  await page.locator(`[data-testid=markets] tr[data-market=${MARKET}]`).waitFor();
  await shot("markets");

  assert.deepEqual(problems, []);
} finally {
  stdin.close();
  await close();
}

figures.total_s = (Date.now() - started) / 1000;
if (FIGURES) writeFileSync(FIGURES, JSON.stringify(figures, null, 1));
console.log(JSON.stringify(figures));

/**
 * Two traders add resting orders at 100 a second for 3 s while the page counts frames, depth
 * messages and book renders. Then the book must show the api's depth at once.
 */
async function burst() {
  const [a, b] = await Promise.all([trader({ USD: "100000" }), trader({ BTC: "100" })]);
  await page.evaluate(() => {
    const s = window.__xch;
    const probe = { frames: [], start: performance.now(), updates: s.book.updates, renders: s.book.renders };
    window.__probe = probe;
    const tick = (t) => {
      probe.frames.push(t);
      if (!probe.stop) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  // The test runner enqueues the orders (100 a second for 3 s, as the api enqueues them) and
  // answers on stdin when it is done: the api alone does not take 100 orders a second on
  // this 2-core machine beside the browser and the other services.
  console.log(`@@burst ${JSON.stringify({ buyer: a.user, seller: b.user })}`);
  const done = JSON.parse((await stdinLines.next()).value);
  const depth = await call(null, "GET", `/depth?market=${MARKET}&limit=1`);
  const bestBid = depth.bids[0][0];
  const bestAsk = depth.asks[0][0];
  // Once the last message arrived the book shows the final state: no backlog of renders.
  const settle = Date.now();
  await page.locator(`[data-testid=bids] tr:first-child[data-price='${bestBid}']`).waitFor();
  await page.locator(`[data-testid=asks] tr:last-child[data-price='${bestAsk}']`).waitFor();
  const result = await page.evaluate(() => {
    const probe = window.__probe;
    probe.stop = true;
    const s = window.__xch;
    const frames = probe.frames;
    const gaps = frames.slice(1).map((t, i) => t - frames[i]).sort((x, y) => x - y);
    const seconds = (performance.now() - probe.start) / 1000;
    return {
      seconds: Number(seconds.toFixed(2)),
      depth_messages: s.book.updates - probe.updates,
      book_renders: s.book.renders - probe.renders,
      gaps: s.book.gaps,
      frames: frames.length,
      frame_p50_ms: Number(gaps[Math.floor(gaps.length * 0.5)].toFixed(1)),
      frame_p99_ms: Number(gaps[Math.floor(gaps.length * 0.99)].toFixed(1)),
      frame_max_ms: Number(gaps.at(-1).toFixed(1)),
    };
  });
  result.orders_sent = done.orders;
  result.send_seconds = done.seconds;
  result.settle_ms = Date.now() - settle;
  result.best_bid = bestBid;
  result.best_ask = bestAsk;
  // Coalesced: at most one render per frame, however many messages came.
  assert.ok(result.book_renders <= result.frames + 2, JSON.stringify(result));
  assert.ok(result.depth_messages >= done.orders * 0.5, `few depth messages: ${JSON.stringify(result)}`);
  assert.ok(result.settle_ms < 1000, `the book lagged: ${JSON.stringify(result)}`);
  return result;
}
