import { chromium } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import { killAll, startDemo, startDispatcher, tempDir } from "./helpers.js";

afterEach(killAll);

const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe("live mesh page", () => {
  it("shows a worker appear, counts change, and the worker turn unhealthy after SIGKILL", async () => {
    const dir = tempDir();
    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: chromiumArgs });
    try {
      const { httpUrl, rpcUrl } = await startDispatcher(dir.path, [
        "--health-grace-ms",
        "1000",
        "--lease-duration-ms",
        "1500",
      ]);
      const page = await browser.newPage();
      const external: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith(httpUrl)) external.push(r.url());
      });
      await page.goto(`${httpUrl}/`);
      await page.locator("#status.live").waitFor({ timeout: 10_000 });
      expect(await page.locator("#peers tr[data-peer]").count()).toBe(0);

      startDemo(["--roles", "seeder", "--rpc-url", rpcUrl, "--seeder-interval", "100ms"]);
      const worker = startDemo([
        "--roles",
        "worker",
        "--rpc-url",
        rpcUrl,
        "--worker-peer-id",
        "page-worker",
        "--work-ms",
        "5-20",
      ]);
      const row = page.locator('#peers tr[data-peer="page-worker"]');
      await row.locator(".badge.ok").waitFor({ timeout: 10_000 });
      expect(await row.getAttribute("data-healthy")).toBe("true");

      // Counts change: events flow and tables appear.
      const seen = async () => Number(await page.locator("#events-seen").textContent());
      const first = await seen();
      // (string predicates: they run in the page, where `document` exists)
      await page.waitForFunction(
        `Number(document.getElementById("events-seen").textContent) > ${first + 5}`,
        undefined,
        {
          timeout: 10_000,
        },
      );
      await page.waitForFunction('Number(document.getElementById("table-count").textContent) > 0', undefined, {
        timeout: 10_000,
      });
      expect(await page.locator("#tables tr td").first().textContent()).not.toBe("no table yet");
      expect(await page.locator("#feed li").count()).toBeGreaterThan(0);

      worker.proc.kill("SIGKILL");
      await worker.exited;
      await row.locator(".badge.bad").waitFor({ timeout: 10_000 });
      expect(await row.getAttribute("data-healthy")).toBe("false");
      expect(external).toEqual([]);
    } finally {
      await browser.close();
      await killAll();
      dir.remove();
    }
  });
});
