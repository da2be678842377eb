// The REST client: same-origin /api/v1, bearer tokens from the session, errors as the api's
// {code, message}. Types come from the api's OpenAPI document (src/api/schema.d.ts, generated
// by `npm run gen:api`), so a changed response shape fails the type check here.

import type { components } from "@/api/schema";
import { clearSession, getSession, saveSession, type Session } from "./session";

type Schemas = components["schemas"];
export type Market = Schemas["MarketOut"];
export type Ticker = Schemas["TickerOut"];
export type Kline = Schemas["KlineOut"];
export type Trade = Schemas["TradeOut"];
export type Depth = Schemas["DepthOut"];
export type Balance = Schemas["BalanceOut"];
export type Order = Schemas["OrderOut"];
export type OrderIn = Schemas["OrderIn"];
export type Fill = Schemas["UserFillOut"];
export type Tokens = Schemas["TokensOut"];
export type CancelOut = Schemas["CancelOut"];
export type OrderListIn = Schemas["OrderListIn"];
export type OrderList = Schemas["OrderListOut"];

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function send(method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(`${API}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function decode<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let payload: unknown = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page): reported below with the status.
  }
  if (!response.ok) {
    const error = payload as { code?: string; message?: string } | null;
    throw new ApiError(
      response.status,
      error?.code ?? "http_error",
      error?.message ?? `HTTP ${response.status}`,
    );
  }
  return payload as T;
}

/** Tokens as the session keeps them: the expiry made absolute. */
export function sessionOf(tokens: Tokens, email: string): Session {
  return {
    user_id: tokens.user_id,
    email,
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_at: Date.now() + tokens.expires_in * 1000,
  };
}

let refreshing: Promise<boolean> | null = null;

/** Trade the refresh token for new tokens, once however many callers ask at the same time
 * (a refresh token works once: the api rotates it). */
export async function refresh(): Promise<boolean> {
  const session = getSession();
  if (!session) return false;
  refreshing ??= (async () => {
    try {
      const response = await send("POST", "/refresh", { refresh_token: session.refresh_token });
      const tokens = await decode<Tokens>(response);
      saveSession(sessionOf(tokens, session.email));
      return true;
    } catch {
      clearSession();
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const session = getSession();
  let response = await send(method, path, body, session?.access_token);
  if (response.status === 401 && session && (await refresh())) {
    response = await send(method, path, body, getSession()?.access_token);
  }
  return decode<T>(response);
}

function query(params: Record<string, string | number | undefined>): string {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined);
  return entries.length ? `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)]))}` : "";
}

export const api = {
  markets: () => request<Market[]>("GET", "/markets"),
  tickers: (market?: string) => request<Ticker[]>("GET", `/tickers${query({ market })}`),
  klines: (market: string, interval: string, limit = 300) =>
    request<Kline[]>("GET", `/klines${query({ market, interval, limit })}`),
  trades: (market: string, limit = 50) => request<Trade[]>("GET", `/trades${query({ market, limit })}`),
  signup: (email: string, password: string) =>
    request<Tokens>("POST", "/signup", { email, password }),
  signin: (email: string, password: string) =>
    request<Tokens>("POST", "/signin", { email, password }),
  /** Spends the refresh token; the access token runs out on its own. */
  signout: (refreshToken: string) => request("POST", "/signout", { refresh_token: refreshToken }),
  balances: () => request<Balance[]>("GET", "/balances"),
  faucet: (asset: string, amount: string) => request("POST", "/faucet", { asset, amount }),
  place: (order: OrderIn) => request<Order>("POST", "/order", order),
  cancel: (orderId: string) => request<CancelOut>("DELETE", `/order/${orderId}`),
  placeList: (list: OrderListIn) => request<OrderList>("POST", "/order-lists", list),
  openOrders: (market?: string) => request<Order[]>("GET", `/orders/open${query({ market })}`),
  orderHistory: (market?: string) =>
    request<Order[]>("GET", `/orders/history${query({ market })}`),
  fills: (market?: string) => request<Fill[]>("GET", `/fills${query({ market })}`),
  portfolio: () => request<Schemas["PortfolioOut"]>("GET", "/portfolio"),
  portfolioHistory: (interval: string, limit?: number) =>
    request<Schemas["HistoryOut"]>("GET", `/portfolio/history${query({ interval, limit })}`),
};
