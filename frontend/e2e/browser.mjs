// Debian's Chromium through playwright-core, as every browser script here opens it: headless,
// a throw-away profile, a 1440 × 900 window, and the page's own errors collected in `problems`.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

/** Opens the browser; `close()` shuts it and removes its profile. */
export async function openBrowser(executablePath, timeout) {
  const userDataDir = mkdtempSync(path.join(tmpdir(), "xch-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
    viewport: { width: 1440, height: 900 },
  });
  context.setDefaultTimeout(timeout);
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  const close = async () => {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { page, problems, close };
}
