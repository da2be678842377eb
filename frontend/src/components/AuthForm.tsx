"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { api, ApiError, sessionOf } from "@/lib/api";
import { saveSession } from "@/lib/session";

export function AuthForm({ mode }: { mode: "signin" | "signup" }) {
  const router = useRouter();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const signup = mode === "signup";

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const tokens = await (signup ? api.signup : api.signin)(email, password);
      saveSession(sessionOf(tokens, email));
      // A new account has nothing yet: the balances page has the demo faucet.
      router.push(signup ? "/balances/" : "/");
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : String(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} className="panel mx-auto mt-16 flex max-w-sm flex-col gap-3 p-6">
      <h1 className="text-lg font-semibold">{signup ? "Create an account" : "Sign in"}</h1>
      <label className="flex flex-col gap-1 text-muted">
        Email
        <input className="input" type="email" name="email" autoComplete="email" required
          value={email} onChange={(e) => setEmail(e.target.value)} />
      </label>
      <label className="flex flex-col gap-1 text-muted">
        Password
        <input className="input" type="password" name="password" required minLength={8}
          autoComplete={signup ? "new-password" : "current-password"}
          value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      {error && <p role="alert" className="text-down">{error}</p>}
      <button className="btn bg-accent text-black disabled:opacity-50" disabled={busy} type="submit">
        {signup ? "Sign up" : "Sign in"}
      </button>
      <p className="text-muted">
        {signup ? "Have an account? " : "New here? "}
        <Link className="text-accent" href={signup ? "/signin/" : "/signup/"}>
          {signup ? "Sign in" : "Sign up"}
        </Link>
      </p>
    </form>
  );
}
