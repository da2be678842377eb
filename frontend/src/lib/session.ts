// The signed-in user: tokens in localStorage (so a reload stays signed in), and a tiny
// subscription so React components re-render when someone signs in or out.

export interface Session {
  user_id: string;
  email: string;
  access_token: string;
  refresh_token: string;
  /** When the access token expires (ms since the epoch). */
  expires_at: number;
}

const KEY = "xch.session";
const listeners = new Set<() => void>();
let cached: Session | null | undefined;

export function getSession(): Session | null {
  if (cached === undefined) {
    if (typeof localStorage === "undefined") return null;
    const raw = localStorage.getItem(KEY);
    cached = raw ? (JSON.parse(raw) as Session) : null;
  }
  return cached;
}

function changed(session: Session | null): void {
  cached = session;
  for (const listener of listeners) listener();
}

export function saveSession(session: Session): void {
  localStorage.setItem(KEY, JSON.stringify(session));
  changed(session);
}

export function clearSession(): void {
  localStorage.removeItem(KEY);
  changed(null);
}

export function onSession(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
