import { execFileSync } from "node:child_process";

/** One veth pair between two namespaces: `a` side and `b` side, each with its device and /30 address. */
export interface NetLink {
  readonly a: { readonly ns: string; readonly dev: string; readonly ip: string };
  readonly b: { readonly ns: string; readonly dev: string; readonly ip: string };
}

const labs = new Set<NetLab>();
let labCounter = 0;

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

// Whatever happens to the test (a failed assertion, an uncaught error, Ctrl-C), the namespaces go with the process.
process.once("exit", () => {
  for (const lab of labs) lab.destroy();
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    for (const lab of labs) lab.destroy();
    process.exit(130);
  });
}

/**
 * Network namespaces joined by veth pairs, for real partitions: each namespace gets a unique name
 * `or-<pid>-<lab>-<n>`, each pair a private /30 (10.213.<k>.1 and .2), and traffic never leaves them. `destroy()` deletes every namespace (and
 * with it every veth); it also runs at process exit. Without `ip netns` (not root, no iproute2) creating a lab throws:
 * a drill never silently skips.
 */
export class NetLab {
  readonly id: string;
  private readonly namespaces: string[] = [];
  private links = 0;
  private destroyed = false;

  constructor() {
    this.id = `${process.pid}-${++labCounter}`;
    try {
      ip("netns", "list");
    } catch (error) {
      throw new Error(`the partition drills need 'ip netns' (run as root with iproute2): ${(error as Error).message}`);
    }
    labs.add(this);
  }

  /** Adds a namespace (loopback up) and returns its name. */
  namespace(): string {
    const name = `or-${this.id}-${this.namespaces.length}`;
    ip("netns", "add", name);
    this.namespaces.push(name);
    ip("-n", name, "link", "set", "lo", "up");
    return name;
  }

  /** Joins namespaces `a` and `b` with a veth pair on a private /30 and brings both ends up. */
  link(a: string, b: string): NetLink {
    const k = ++this.links;
    const devA = `v${process.pid % 100_000}l${labCounter}k${k}a`.slice(0, 15);
    const devB = `${devA.slice(0, -1)}b`;
    const subnet = `10.213.${(labCounter * 16 + k) % 250}`;
    ip("link", "add", devA, "netns", a, "type", "veth", "peer", "name", devB, "netns", b);
    ip("-n", a, "addr", "add", `${subnet}.1/30`, "dev", devA);
    ip("-n", b, "addr", "add", `${subnet}.2/30`, "dev", devB);
    ip("-n", a, "link", "set", devA, "up");
    ip("-n", b, "link", "set", devB, "up");
    return { a: { ns: a, dev: devA, ip: `${subnet}.1` }, b: { ns: b, dev: devB, ip: `${subnet}.2` } };
  }

  /** Cuts the link: its `a` end goes down, so nothing crosses it either way. */
  partition(link: NetLink): void {
    ip("-n", link.a.ns, "link", "set", link.a.dev, "down");
  }

  /** Heals a {@link partition}. */
  heal(link: NetLink): void {
    ip("-n", link.a.ns, "link", "set", link.a.dev, "up");
  }

  /** Deletes every namespace of the lab (their veths go with them). Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    labs.delete(this);
    for (const name of this.namespaces) {
      try {
        ip("netns", "del", name);
      } catch {
        // Already gone.
      }
    }
  }

  /** Namespaces of this lab that still exist (for the teardown assertion). */
  remaining(): string[] {
    const listed = ip("netns", "list");
    return this.namespaces.filter((name) => new RegExp(`^${name}( |$)`, "m").test(listed));
  }
}
