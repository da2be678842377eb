"use client";

import Link from "next/link";
import { useEffect, useState } from "react";
import { api } from "@/lib/api";
import { useFeedAuth, useSession } from "@/lib/hooks";
import { clearSession } from "@/lib/session";

function signOut(refreshToken: string) {
  // Signed out here whatever the api answers: the access token expires on its own.
  api.signout(refreshToken).catch(() => undefined);
  clearSession();
}

function ThemeToggle() {
  const [light, setLight] = useState(false);
  useEffect(() => setLight(document.documentElement.classList.contains("light")), []);
  const toggle = () => {
    const next = !light;
    document.documentElement.classList.toggle("light", next);
    localStorage.setItem("xch.theme", next ? "light" : "dark");
    setLight(next);
  };
  return (
    <button className="text-muted hover:text-text" onClick={toggle} aria-label="Switch theme">
      {light ? "Dark" : "Light"}
    </button>
  );
}

export function Header() {
  const session = useSession();
  useFeedAuth();
  return (
    <header className="flex flex-wrap items-center gap-4 border-b border-line bg-panel px-4 py-2">
      <Link href="/" className="font-bold text-accent">
        EXCHANGE
      </Link>
      <nav className="flex gap-4 text-muted">
        <Link href="/" className="hover:text-text">Markets</Link>
        <Link href="/trade/" className="hover:text-text">Trade</Link>
        {session && <Link href="/balances/" className="hover:text-text">Balances</Link>}
        {session && <Link href="/history/" className="hover:text-text">History</Link>}
        {session && <Link href="/portfolio/" className="hover:text-text">Portfolio</Link>}
      </nav>
      <div className="ml-auto flex items-center gap-4">
        <ThemeToggle />
        {session ? (
          <>
            <span className="hidden text-muted sm:inline" data-testid="user-email">{session.email}</span>
            <button className="text-muted hover:text-text" onClick={() => signOut(session.refresh_token)}>
              Sign out
            </button>
          </>
        ) : (
          <>
            <Link href="/signin/" className="hover:text-accent">Sign in</Link>
            <Link href="/signup/" className="btn bg-accent text-black">Sign up</Link>
          </>
        )}
      </div>
    </header>
  );
}
