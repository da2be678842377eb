import type { Metadata, Viewport } from "next";
import { Header } from "@/components/Header";
import "./globals.css";

export const metadata: Metadata = { title: "Exchange", description: "Spot trading" };
export const viewport: Viewport = { width: "device-width", initialScale: 1 };

// The saved theme is applied before the first paint, so a light-theme user sees no dark flash.
const THEME = `try{if(localStorage.getItem("xch.theme")==="light")document.documentElement.classList.add("light")}catch(e){}`;

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en" suppressHydrationWarning>
      <head>
        <script dangerouslySetInnerHTML={{ __html: THEME }} />
      </head>
      <body className="min-h-screen text-sm">
        <Header />
        <main className="p-2">{children}</main>
      </body>
    </html>
  );
}
