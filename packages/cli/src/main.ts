import { CommanderError } from "commander";
import pkg from "../package.json" with { type: "json" };
import { ExitCodes, reportError } from "./output.js";
import { createProgram } from "./program.js";

async function main(argv: readonly string[]): Promise<number> {
  try {
    await createProgram(pkg.version).parseAsync([...argv]);
    return ExitCodes.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has already printed the message (or the help / version).
      return error.code === "commander.helpDisplayed" || error.code === "commander.version"
        ? ExitCodes.ok
        : ExitCodes.usage;
    }
    return reportError(error);
  }
}

const code = await main(process.argv);
// Let stdout flush before exiting; exit explicitly so no stray handle keeps a finished command alive.
process.stdout.write("", () => process.exit(code));
