/**
 * `--netns`: the demo's workers (and the soak's worker) in network namespaces of their own, so a link between a worker
 * and the dispatcher can really be cut (`tools/mesh-chaos.sh --partition worker|grpc`). The host namespace gets a
 * bridge `ordm<tag>` with 10.214.<s>.1/24 (the first subnet free on the host from <tag> mod 250 on); every member gets a namespace `ordm<tag>-<member>` whose veth joins the
 * bridge with 10.214.<s>.<10+i>. The dispatcher listens on the bridge address, which the host (its browser, the
 * seeder, the diagnostics page) reaches as a local address. Needs root and iproute2 (`ip netns`).
 */
import { execFileSync } from "node:child_process";

/** What a demo started with `--netns` runs in. */
export interface DemoNetwork {
  /** The bridge's address in the host namespace: the dispatcher listens here. */
  readonly hostIp: string;
  /** The namespace of each member, by member name. */
  readonly namespaces: ReadonlyMap<string, string>;
  /** The command and arguments that run `argv` inside `member`'s namespace. */
  exec(member: string, argv: readonly string[]): { command: string; args: string[] };
  /** Brings `member`'s link down (`up: false`) or up again: a real partition, both ways. */
  setLink(member: string, up: boolean): void;
  /** Deletes the namespaces (their veths go with them) and the bridge. Idempotent; also runs at process exit. */
  destroy(): void;
}

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function quietly(run: () => unknown): void {
  try {
    run();
  } catch {
    // Already gone.
  }
}

/** The namespaces and links `ip` lists whose names start with `prefix`. */
function leftovers(prefix: string): { namespaces: string[]; links: string[] } {
  const namespaces = ip("netns", "list")
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(`${prefix}-`));
  const links = ip("-o", "link", "show")
    .split("\n")
    .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1] ?? "")
    .filter((name) => name.startsWith(prefix));
  return { namespaces, links };
}

/** The first 10.214.<s> /24 from `start` on that no address of this host is in. */
function freeSubnet(start: number): string {
  const used = ip("-4", "-o", "addr", "show");
  for (let i = 0; i < 250; i++) {
    const subnet = `10.214.${(start + i) % 250}`;
    if (!used.includes(` ${subnet}.`)) return subnet;
  }
  throw new Error("--netns: every subnet of 10.214.0.0/16 is in use on this host");
}

/**
 * Builds the layout for `members` (each gets its own namespace). `tag` names it (the demo uses its RPC port, so two
 * demos on different ports do not collide); what an earlier run with the same tag left behind (a launcher killed -9)
 * is removed first.
 * @throws Error when `ip netns` is not available (not root, no iproute2) or no 10.214.<s>.0/24 is free.
 */
export function createDemoNetwork(tag: string, members: readonly string[]): DemoNetwork {
  const prefix = `ordm${tag}`.slice(0, 11);
  try {
    ip("netns", "list");
  } catch (error) {
    throw new Error(`--netns needs root and iproute2 ('ip netns'): ${(error as Error).message.split("\n")[0]}`);
  }
  const stale = leftovers(prefix);
  for (const ns of stale.namespaces) quietly(() => ip("netns", "del", ns));
  for (const link of stale.links) quietly(() => ip("link", "del", link));
  const subnet = freeSubnet((Number.parseInt(tag, 10) || 0) % 250);
  const namespaces = new Map<string, string>();
  const devices = new Map<string, string>();
  let destroyed = false;
  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    process.off("exit", destroy);
    for (const ns of namespaces.values()) quietly(() => ip("netns", "del", ns));
    quietly(() => ip("link", "del", prefix));
  };
  process.once("exit", destroy);
  try {
    ip("link", "add", prefix, "type", "bridge");
    ip("addr", "add", `${subnet}.1/24`, "dev", prefix);
    ip("link", "set", prefix, "up");
    members.forEach((member, i) => {
      const ns = `${prefix}-${member}`;
      const host = `${prefix}h${i}`;
      const inner = `${prefix}n${i}`;
      ip("netns", "add", ns);
      namespaces.set(member, ns);
      devices.set(member, inner);
      ip("-n", ns, "link", "set", "lo", "up");
      ip("link", "add", host, "type", "veth", "peer", "name", inner, "netns", ns);
      ip("link", "set", host, "master", prefix, "up");
      ip("-n", ns, "addr", "add", `${subnet}.${10 + i}/24`, "dev", inner);
      ip("-n", ns, "link", "set", inner, "up");
    });
  } catch (error) {
    destroy();
    throw new Error(`--netns: could not build the namespaces: ${(error as Error).message.split("\n")[0]}`);
  }
  const nsOf = (member: string): string => {
    const ns = namespaces.get(member);
    if (ns === undefined) throw new Error(`no namespace for '${member}'`);
    return ns;
  };
  return {
    hostIp: `${subnet}.1`,
    namespaces,
    exec: (member, argv) => ({ command: "ip", args: ["netns", "exec", nsOf(member), ...argv] }),
    setLink: (member, up) => {
      ip("-n", nsOf(member), "link", "set", devices.get(member) as string, up ? "up" : "down");
    },
    destroy,
  };
}

/** `url` with its host replaced by `host` (port and path kept). */
export function withHost(url: string, host: string): string {
  const parsed = new URL(url);
  parsed.hostname = host;
  return parsed.origin;
}
