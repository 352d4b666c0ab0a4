import { afterAll, afterEach, expect } from "vitest";
import { NetLab } from "../src/netns.js";
import { killAll } from "./procs.js";

/**
 * The network lab of a drill file and its clean-up: after each test the drill's processes are killed and the
 * directories registered in `dirs` removed; after the file every namespace is destroyed (and checked gone).
 */
export function drillLab(): { lab: NetLab; dirs: Array<() => void> } {
  const lab = new NetLab();
  const dirs: Array<() => void> = [];
  afterEach(async () => {
    await killAll();
    for (const remove of dirs.splice(0)) remove();
  });
  afterAll(() => {
    lab.destroy();
    expect(lab.remaining()).toEqual([]);
  });
  return { lab, dirs };
}
