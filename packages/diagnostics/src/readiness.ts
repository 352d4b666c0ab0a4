import { OmniRelayError, type ReadinessCheck } from "@omnirelay/core";
import { textOption } from "@omnirelay/core/wire";
import { duplicate } from "./errors.js";

/** The named readiness checks of a control plane (internal). */
export class ReadinessChecks {
  private readonly checks = new Map<string, ReadinessCheck>();

  /** Adds a check; see `ResourceLeaseControlPlane.addReadinessCheck`. */
  add(name: string, check: ReadinessCheck): () => void {
    const key = textOption("name", name);
    if (typeof check !== "function")
      throw OmniRelayError.invalidOption("check", "A readiness check must be a function.");
    if (this.checks.has(key)) throw duplicate("readiness check", key);
    this.checks.set(key, check);
    return () => {
      if (this.checks.get(key) === check) this.checks.delete(key);
    };
  }

  /** The issues of every check, `name: issue`; a check that throws is an issue too. */
  issues(): string[] {
    const issues: string[] = [];
    for (const [name, check] of this.checks) {
      try {
        const issue = check();
        if (issue) issues.push(`${name}: ${issue}`);
      } catch (err) {
        issues.push(`${name}: check failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return issues;
  }
}
