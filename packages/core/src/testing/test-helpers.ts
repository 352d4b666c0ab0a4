import type { ConformanceTestApi } from "./conformance-support.js";

// Helpers of the conformance suites' own tests. Not exported from the testing entry.

/** Registers a suite with a recording test API and returns its checks by name, without running them. */
export function registeredChecks(register: (test: ConformanceTestApi) => void): Map<string, () => Promise<void>> {
  const checks = new Map<string, () => Promise<void>>();
  register({
    describe: (_name, body) => body(),
    it: (name, body) => {
      if (checks.has(name)) throw new Error(`two checks are named ${JSON.stringify(name)}`);
      checks.set(name, body);
    },
  });
  return checks;
}

/**
 * Runs every check of a suite and returns the names of those that failed. A check still running after `timeoutMs`
 * counts as failed (as it would under a test framework's timeout).
 */
export async function failingChecks(register: (test: ConformanceTestApi) => void, timeoutMs = 2000): Promise<string[]> {
  const failed: string[] = [];
  for (const [name, run] of registeredChecks(register)) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${name}: timed out`)), timeoutMs);
    });
    try {
      await Promise.race([run(), timeout]);
    } catch {
      failed.push(name);
    } finally {
      clearTimeout(timer);
    }
  }
  return failed;
}

/** Resolves after the current macrotask (lets other publishes or calls overtake). */
export function nextTurn(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
