import { Counter, Gauge, type Registry } from "prom-client";

/** What a node counts about its shards' ownership, on the control plane's registry (served at `/metrics`). */
export class MeshOwnershipMetrics {
  /** `omnirelay_mesh_ownership_changes_total{shard,change}`: acquired, released, lost. */
  readonly changes: Counter<"shard" | "change">;
  /** `omnirelay_mesh_append_refusals_total{shard}`: appends the log refused (another node took the shard). */
  readonly refusals: Counter<"shard">;
  /** `omnirelay_mesh_shard_owned{shard}`: 1 while this node serves the shard. */
  readonly owned: Gauge<"shard">;
  /** `omnirelay_mesh_shard_epoch{shard}`: the ownership epoch this node last held the shard at. */
  readonly epoch: Gauge<"shard">;

  constructor(registry: Registry) {
    this.changes = new Counter({
      name: "omnirelay_mesh_ownership_changes_total",
      help: "Shard ownership changes on this node: acquired, released (moved or closed), lost (renewal refused or late, or an append refused).",
      labelNames: ["shard", "change"],
      registers: [registry],
    });
    this.refusals = new Counter({
      name: "omnirelay_mesh_append_refusals_total",
      help: "Appends the shard's JetStream log refused because another node appended after this one's ownership ended.",
      labelNames: ["shard"],
      registers: [registry],
    });
    this.owned = new Gauge({
      name: "omnirelay_mesh_shard_owned",
      help: "1 while this node owns and serves the shard, else 0.",
      labelNames: ["shard"],
      registers: [registry],
    });
    this.epoch = new Gauge({
      name: "omnirelay_mesh_shard_epoch",
      help: "Ownership epoch at which this node last acquired the shard.",
      labelNames: ["shard"],
      registers: [registry],
    });
  }

  /** Starts every series at 0, so a scrape shows each shard before its first change. */
  init(shards: readonly string[]): void {
    for (const shard of shards) {
      for (const change of ["acquired", "released", "lost"]) this.changes.inc({ shard, change }, 0);
      this.refusals.inc({ shard }, 0);
      this.owned.set({ shard }, 0);
    }
  }
}
