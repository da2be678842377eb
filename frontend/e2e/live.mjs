// The trading page as a visitor sees it on a running exchange (`make up`: market makers and the
// taker simulator trading): signs up in the browser, takes demo funds, opens the market and,
// once the market maker's ladder fills the book on both sides, saves the screenshot the
// README shows. `make screenshots-live` runs it (scripts/screenshots-live.sh).
//
// Environment: BASE_URL (the frontend origin, `exchange status` prints it), MARKET,
// SCREENSHOTS (folder for the PNG), MIN_LEVELS (book levels wanted on each side).

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";

import { openBrowser } from "./browser.mjs";

const BASE = process.env.BASE_URL;
const MARKET = process.env.MARKET ?? "btc-usd";
const SCREENSHOTS = process.env.SCREENSHOTS ?? "docs/screenshots";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const MIN_LEVELS = Number(process.env.MIN_LEVELS ?? "10");
const TIMEOUT = 30_000;
assert.ok(BASE, "BASE_URL is the frontend's origin");

const { page, problems, close } = await openBrowser(CHROMIUM, TIMEOUT);

/** Waits until both sides of the book show at least MIN_LEVELS price levels. */
async function waitForLadder() {
  const deadline = Date.now() + TIMEOUT;
  let levels = [0, 0];
  while (Date.now() < deadline) {
    levels = await Promise.all(
      ["bids", "asks"].map((side) => page.locator(`[data-testid=${side}] tr[data-price]`).count()),
    );
    if (levels.every((count) => count >= MIN_LEVELS)) return levels;
    await page.waitForTimeout(250);
  }
  throw new Error(`the book shows ${levels.join(" bids and ")} asks, wanted ${MIN_LEVELS} each`);
}

try {
  await page.goto(`${BASE}/signup/`);
  await page.fill("input[name=email]", `visitor${Date.now()}@example.com`);
  await page.fill("input[name=password]", "correct horse battery");
  await page.click("button[type=submit]");
  await page.waitForURL("**/balances/");
  await page.selectOption("[data-testid=faucet] select", "USD");
  await page.fill("[data-testid=faucet] input[name=amount]", "10000");
  await page.click("[data-testid=faucet] button[type=submit]");
  await page.locator("tr[data-asset=USD]").waitFor();

  await page.goto(`${BASE}/trade/?market=${MARKET}`);
  await page.waitForSelector("body[data-ready]");
  const levels = await waitForLadder();
  // Lets the depth chart and the candles draw the book they were just sent.
  await page.waitForTimeout(2000);
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, "trading-live.png");
  await page.screenshot({ path: file });
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ screenshot: file, bid_levels: levels[0], ask_levels: levels[1] }));
} finally {
  await close();
}
