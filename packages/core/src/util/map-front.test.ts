import { describe, expect, it } from "vitest";
import { MapFront } from "./map-front.js";

const entry = (n: number) => ({ n });

describe("MapFront", () => {
  it("pops from the front while asked, keeps the first it is not, and sees later changes to the map", () => {
    const map = new Map([1, 2, 3, 4].map((n) => [`k${n}`, entry(n)] as const));
    const front = new MapFront(map);
    front.popWhile((v) => v.n < 3);
    expect([...map.keys()]).toEqual(["k3", "k4"]);
    // k3 set again moves to the end: the front is k4 now, then k3 (new), then k5.
    map.set("k3", entry(30));
    map.set("k5", entry(5));
    front.popWhile((v) => v.n === 4);
    expect([...map.keys()]).toEqual(["k3", "k5"]);
    map.delete("k3");
    front.popWhile(() => true);
    expect(map.size).toBe(0);
    // Emptied, then filled again: popping starts over from the new front.
    map.set("k6", entry(6));
    map.set("k7", entry(7));
    front.popWhile((v) => v.n === 6);
    expect([...map.keys()]).toEqual(["k7"]);
  });

  it("matches a fresh for…of front pop over a long random run", () => {
    const map = new Map<string, { n: number }>();
    const model: string[] = [];
    const front = new MapFront(map);
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const forget = (key: string) => {
      if (model.includes(key)) model.splice(model.indexOf(key), 1);
    };
    for (let i = 0; i < 5_000; i++) {
      const key = `k${Math.floor(random() * 300)}`;
      if (random() < 0.6) {
        map.delete(key);
        map.set(key, entry(i));
        forget(key);
        model.push(key);
      } else if (random() < 0.5) {
        map.delete(key);
        forget(key);
      } else {
        const keep = Math.floor(random() * 200);
        front.popWhile(() => map.size > keep);
        while (model.length > keep) model.shift();
      }
      expect([...map.keys()]).toEqual(model);
    }
  });
});
