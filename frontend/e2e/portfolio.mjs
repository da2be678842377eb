// The portfolio page in Debian's Chromium (playwright-core) against a running stack: a user
// trades through the api, signs in in the browser and opens /portfolio/; the page must show
// what `GET /api/v1/portfolio` computes, follow a further trade live (the `portfolio` stream)
// and chart the P&L of `/portfolio/history`. tests/frontend/test_browser.py runs it.
//
// Environment: BASE_URL (the frontend origin), API_URL (the api), MARKET, CHROMIUM,
// SCREENSHOTS (folder for the PNG).

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";

import { openBrowser } from "./browser.mjs";

const BASE = process.env.BASE_URL;
const API = process.env.API_URL;
const MARKET = process.env.MARKET ?? "btc-usd";
const SCREENSHOTS = process.env.SCREENSHOTS;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 20_000;
const PASSWORD = "correct horse battery";
const started = Date.now();

function step(name) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${name}`);
}

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
  const email = `p${Date.now()}${Math.random().toString(16).slice(2, 8)}@example.com`;
  const { access_token: token } = await call(null, "POST", "/signup", { email, password: PASSWORD });
  for (const [asset, amount] of Object.entries(funds)) {
    await call(token, "POST", "/faucet", { asset, amount });
  }
  return { token, email };
}

const order = ({ token }, body) => call(token, "POST", "/order", { market: MARKET, ...body });

/** The api's answer once `done` holds (dbproc and its ticker lag the engine). */
async function eventually(token, route, done) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const body = await call(token, "GET", route);
    if (done(body) || Date.now() > deadline) return body;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// As the page shows amounts (src/lib/decimal.ts format, src/lib/portfolio.ts signed).
const grouped = (text) => {
  const negative = text.startsWith("-");
  const [whole, fraction] = (negative ? text.slice(1) : text).split(".");
  const body = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (fraction !== undefined ? `.${fraction}` : "");
  return `${negative ? "-" : ""}${body}`;
};
const signed = (text) => (/^-|^0(\.0*)?$/.test(text) ? grouped(text) : `+${grouped(text)}`);

const { page, problems, close } = await openBrowser(CHROMIUM, TIMEOUT);
page.on("response", (response) => {
  if (response.status() >= 400) problems.push(`${response.status()} ${response.request().method()} ${response.url()}`);
});

async function waitText(selector, expected, what) {
  const deadline = Date.now() + TIMEOUT;
  let last = "";
  while (Date.now() < deadline) {
    last = await page.locator(selector).first().innerText().catch(() => "");
    if (last.trim() === expected) return;
    await page.waitForTimeout(50);
  }
  throw new Error(`${what}: ${selector} shows ${JSON.stringify(last)}, not ${JSON.stringify(expected)}`);
}

const row = `[data-testid=portfolio-positions] tr[data-market=${MARKET}]`;

try {
  step("liquidity, then a market buy through the api");
  const maker = await trader({ BTC: "1", USD: "10000" });
  await order(maker, { side: "sell", type: "limit", price: "30000.00", quantity: "0.1000" });
  await order(maker, { side: "buy", type: "limit", price: "29000.00", quantity: "0.1000" });
  const user = await trader({ USD: "10000" });
  await order(user, { side: "buy", type: "market", quantity: "0.0500" });
  const first = await eventually(user.token, "/portfolio", (b) => b.positions.length > 0);
  const bought = first.positions[0];
  assert.equal(bought.fills > 0, true, JSON.stringify(first));

  step("sign in and open the portfolio");
  await page.goto(`${BASE}/signin/`);
  await page.fill("input[name=email]", user.email);
  await page.fill("input[name=password]", PASSWORD);
  await page.click("button[type=submit]");
  await page.locator("[data-testid=user-email]").waitFor();
  await page.click("nav >> text=Portfolio");
  await page.waitForURL("**/portfolio/");
  await waitText(`${row} [data-field=position]`, `${grouped(bought.position)} ${bought.base}`, "position");
  await waitText(`${row} [data-field=average_cost]`, grouped(bought.average_cost), "average cost");
  await waitText(`${row} [data-field=realized_pnl]`, signed(bought.realized_pnl), "realized");
  await waitText(`${row} [data-field=last_price]`, grouped(bought.last_price), "last price");
  await waitText(`${row} [data-field=unrealized_pnl]`, signed(bought.unrealized_pnl), "unrealized");

  step("a sell while the page is open: the stream updates it");
  await order(user, { side: "sell", type: "market", quantity: "0.0200" });
  const after = await eventually(
    user.token,
    "/portfolio",
    (b) => b.positions[0]?.fills > bought.fills,
  );
  const sold = after.positions[0];
  await waitText(`${row} [data-field=position]`, `${grouped(sold.position)} ${sold.base}`, "position after");
  await waitText(`${row} [data-field=realized_pnl]`, signed(sold.realized_pnl), "realized after");
  await waitText(`${row} [data-field=last_price]`, grouped(sold.last_price), "last price after");
  await waitText(`${row} [data-field=unrealized_pnl]`, signed(sold.unrealized_pnl), "unrealized after");
  const usd = after.totals.find((t) => t.asset === "USD");
  await waitText("[data-testid=portfolio-totals] [data-asset=USD] [data-field=value]", grouped(usd.value), "value");

  step("the P&L chart");
  const history = await call(user.token, "GET", "/portfolio/history?interval=1m&limit=240");
  await waitText("[data-testid=history-pnl]", signed(history.points.at(-1).pnl), "P&L over time");
  assert.ok(await page.locator("[data-testid=pnl-chart] canvas").count() > 0, "no chart drawn");
  if (SCREENSHOTS) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, "portfolio.png"), fullPage: true });
  }
  assert.deepEqual(problems, []);
  step("done");
} finally {
  await close();
}
