import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { chromium, type Page } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, getJson, killAll, postJson, startDemo, startDispatcher, tempDir } from "./helpers.js";
import {
  type ClippingReport,
  chartsProbe,
  clippingProbe,
  type ImageReport,
  imageProbe,
  type KeyRowReport,
  keysProbe,
} from "./page-probes.js";

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

/** Where the screenshots go (gitignored). */
const outputDir = resolve(import.meta.dirname, "../test-output");

/** Sum of the pending (or dead) column of the shards panel, as the page shows it. */
async function shardColumn(page: Page, field: "pending" | "dead"): Promise<number> {
  const cells = await page.locator(`#shards td[data-field="${field}"]`).allTextContents();
  return cells.reduce((n, t) => n + Number(t), 0);
}

/** Resizes the window, lets the page draw a frame, checks that no table is cut off and takes a checked screenshot. */
async function checkAtWidth(page: Page, width: number): Promise<{ clipping: ClippingReport; image: ImageReport }> {
  const height = 900;
  await page.setViewportSize({ width, height });
  await page.waitForFunction("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))");
  const clipping = (await page.evaluate(clippingProbe)) as ClippingReport;
  mkdirSync(outputDir, { recursive: true });
  const png = await page.screenshot({ path: resolve(outputDir, `live-page-${width}.png`), fullPage: true });
  // The file is a PNG of the whole page: as wide as the window, at least as high (IHDR: width at byte 16, height at 20).
  expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
  expect(png.readUInt32BE(16)).toBe(width);
  expect(png.readUInt32BE(20)).toBeGreaterThanOrEqual(height);
  const image = (await page.evaluate(imageProbe(png.toString("base64")))) as ImageReport;
  return { clipping, image };
}

describe("live mesh page", () => {
  it("shows a worker appear, counts change, opens an item's lease history on a click, and the worker turn unhealthy after SIGKILL", async () => {
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
      // No worker yet: the seeder's items wait under their "<tenant>/<catalog>" keys, busiest first, and its cron
      // schedule is listed with its next slot.
      await page.waitForFunction(`${keysProbe}.length >= 2`, undefined, { timeout: 10_000 });
      const keys = (await page.evaluate(keysProbe)) as KeyRowReport[];
      expect(
        keys.every(
          (k) => /^tenant-(bulk|interactive)\/[a-z-]+$/.test(k.key) && k.shard.startsWith("resourcelease.mesh."),
        ),
      ).toBe(true);
      const loads = keys.map((k) => k.active + k.pending);
      expect(loads).toEqual([...loads].sort((a, b) => b - a));
      const schedule = page.locator('#schedules tr[data-schedule="catalog-maintenance"]');
      await schedule.waitFor({ timeout: 10_000 });
      expect(await schedule.locator("td").nth(1).textContent()).toBe("*/10 * * * * * UTC");
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

      // Clicking an item in the live events opens its lease history: enqueued, then granted to the worker.
      const itemButton = page.locator("#feed button.item").first();
      const seq = Number(await itemButton.getAttribute("data-seq"));
      const shard = String(await itemButton.getAttribute("data-shard"));
      await itemButton.click();
      await page.locator('#ih-entries tr[data-event="Enqueue"]').waitFor({ timeout: 10_000 });
      expect(await page.locator("#ih-title").textContent()).toContain(`item ${seq}`);
      const story = await getJson<{ sequenceId: number; entries: { eventType: string }[] }>(
        `${httpUrl}/demo/item-history?shard=${encodeURIComponent(shard)}&sequenceId=${seq}`,
      );
      expect(story.sequenceId).toBe(seq);
      expect(story.entries[0]?.eventType).toBe("Enqueue");
      expect(await page.locator("#ih-entries tr").count()).toBeGreaterThanOrEqual(story.entries.length);
      // A bad request and an unknown item answer with codes, not a page error.
      const bad = await fetch(`${httpUrl}/demo/item-history?shard=${encodeURIComponent(shard)}&sequenceId=0`);
      expect([bad.status, ((await bad.json()) as { code: string }).code]).toEqual([400, "mesh.demo.history.invalid"]);
      const missing = await fetch(
        `${httpUrl}/demo/item-history?shard=${encodeURIComponent(shard)}&sequenceId=999999999`,
      );
      expect(missing.status).toBe(404);

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

  it("draws the charts, cuts no column off at 900, 1400 and 1920 px, and redrives dead letters one and all", async () => {
    const dir = tempDir();
    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: chromiumArgs });
    try {
      const { httpUrl, rpcUrl } = await startDispatcher(dir.path, ["--lease-duration-ms", "1500"]);
      const seeder = startDemo(["--roles", "seeder", "--rpc-url", rpcUrl, "--seeder-interval", "100ms"]);
      const worker = startDemo([
        "--roles",
        "worker",
        "--rpc-url",
        rpcUrl,
        "--worker-peer-id",
        "chart-worker",
        "--work-ms",
        "5-20",
      ]);
      // Two items the worker cannot read: it dead-letters them (reason "failed", no retry).
      const bad: number[] = [];
      for (const table of ["broken_a", "broken_b"]) {
        const r = await postJson(`${httpUrl}/demo/enqueue`, { catalog: "delta-lab", table, body: "{not json" });
        expect(r.status).toBe(200);
        bad.push(r.body.sequenceId as number);
      }
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const external: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith(httpUrl)) external.push(r.url());
      });
      await page.goto(`${httpUrl}/`);
      await page.locator("#status.live").waitFor({ timeout: 10_000 });

      // The charts fill with one sample a second, each line with one point per sample.
      await page.waitForFunction(`${chartsProbe}.every((c) => c.points >= 4)`, undefined, { timeout: 20_000 });
      const charts = (await page.evaluate(chartsProbe)) as { id: string; points: number; lines: number[] }[];
      expect(charts.map((c) => c.id)).toEqual(["chart-throughput", "chart-queue", "chart-lag"]);
      for (const c of charts) for (const line of c.lines) expect(line).toBe(c.points);
      expect(charts.map((c) => c.lines.length)).toEqual([2, 2, 1]);
      // The samples show the seeder's enqueues and the worker's completions once the worker is up (on a loaded
      // machine its process can start after the fourth sample: wait for them rather than read the first four).
      const history = await eventually(async () => {
        const h = (
          await getJson<{ history: { enqueuedPerSec: number; completedPerSec: number }[] }>(`${httpUrl}/demo/state`)
        ).history;
        return h.some((s) => s.completedPerSec > 0) && h;
      }, 20_000);
      expect(Math.max(...history.map((h) => h.enqueuedPerSec))).toBeGreaterThan(0);
      expect(Math.max(...history.map((h) => h.completedPerSec))).toBeGreaterThan(0);

      // Both dead letters are listed, newest first, with reason and attempt.
      const deadRows = page.locator("#dead tr[data-seq]");
      await page.waitForFunction(`document.querySelectorAll("#dead tr[data-seq]").length === 2`, undefined, {
        timeout: 10_000,
      });
      expect(
        await deadRows.evaluateAll((rows) =>
          rows.map((r) => Number((r as unknown as { dataset: { seq: string } }).dataset.seq)),
        ),
      ).toEqual([...bad].reverse());
      expect(await deadRows.first().locator("td").nth(2).textContent()).toBe("failed");
      expect(await deadRows.first().locator("td").nth(3).textContent()).toBe("1");
      await page.waitForFunction(`Number(document.getElementById("table-count").textContent) >= 3`, undefined, {
        timeout: 10_000,
      });

      for (const width of [900, 1400, 1920]) {
        const { clipping, image } = await checkAtWidth(page, width);
        expect(clipping.problems, `at ${width} px`).toEqual([]);
        expect(clipping.cells).toBeGreaterThan(60);
        expect(image.width).toBe(width);
        expect(image.height).toBeGreaterThanOrEqual(900);
        expect(image.colours, `colours at ${width} px`).toBeGreaterThan(40);
        expect(image.inked, `share of non-background pixels at ${width} px`).toBeGreaterThan(0.05);
      }

      // Stop the load, let the worker finish what is queued, then stop it: what comes back to pending stays there.
      seeder.proc.kill("SIGKILL");
      await seeder.exited;
      // The seeder's cron schedule is the shard's and outlives it: remove it, so no slot adds to the counts below.
      const { schedules } = await getJson<{ schedules: { shard: string; id: string }[] }>(`${httpUrl}/demo/state`);
      expect(schedules.map((x) => x.id)).toEqual(["catalog-maintenance"]);
      for (const x of schedules) {
        const removed = await fetch(rpcUrl, {
          method: "POST",
          headers: { "rpc-procedure": `${x.shard}::schedule.remove`, "content-type": "application/json" },
          body: JSON.stringify({ id: x.id }),
        });
        expect(removed.status).toBe(200);
      }
      await eventually(
        async () => (await shardColumn(page, "pending")) === 0 && (await shardColumn(page, "dead")) === 2,
      );
      await page.locator("#schedules td.dim", { hasText: "no schedule" }).waitFor({ timeout: 10_000 });
      await eventually(async () => {
        const state = await getJson<{ shards: { active: number }[] }>(`${httpUrl}/demo/state`);
        return state.shards.every((s) => s.active === 0);
      });
      worker.proc.kill("SIGKILL");
      await worker.exited;

      // One item: its row's button.
      await page.locator(`#dead tr[data-seq="${bad[0]}"] button.redrive`).click();
      await page.waitForFunction(`document.querySelectorAll("#dead tr[data-seq]").length === 1`, undefined, {
        timeout: 10_000,
      });
      expect(await deadRows.first().getAttribute("data-seq")).toBe(String(bad[1]));
      await eventually(async () => (await shardColumn(page, "pending")) === 1);
      expect(await page.locator("#dl-msg").textContent()).toBe("redriven: 1 back to pending");
      // All the rest.
      await page.locator("#redrive-all").click();
      await page.locator("#dead td.dim", { hasText: "no dead letter" }).waitFor({ timeout: 10_000 });
      await eventually(
        async () => (await shardColumn(page, "pending")) === 2 && (await shardColumn(page, "dead")) === 0,
      );
      expect(await page.locator("#dead-count").textContent()).toBe("0");
      expect(await page.locator("#feed .t-Redriven").count()).toBe(2);
      expect(external).toEqual([]);
    } finally {
      await browser.close();
      await killAll();
      dir.remove();
    }
  });
});
