import { ErrorCodes, type Logger, OmniRelayError, silentLogger } from "@omnirelay/core";

/** Log levels the control plane accepts (pino's names). */
export const LogLevels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/** One of {@link LogLevels}. */
export type LogLevel = (typeof LogLevels)[number];

/** The tracing switch served at `/omnirelay/control/tracing`. */
export interface TracingSettings {
  /** Whether spans are recorded. */
  readonly enabled: boolean;
  /** Fraction of new traces sampled, in [0, 1]. */
  readonly samplingProbability: number;
}

/** The logging switch served at `/omnirelay/control/logging`. */
export interface LoggingSettings {
  /** Minimum level that is written. */
  readonly level: LogLevel;
}

/** Initial values of the runtime toggles. */
export interface RuntimeToggleOptions {
  /** @defaultValue 'info' */
  readonly logLevel?: LogLevel;
  /** @defaultValue `{ enabled: true, samplingProbability: 1 }` */
  readonly tracing?: Partial<TracingSettings>;
  /** Receives listener failures. @defaultValue `silentLogger` */
  readonly logger?: Logger;
}

function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === "string" && (LogLevels as readonly string[]).includes(value);
}

function badInput(code: string, field: string, message: string): OmniRelayError {
  return new OmniRelayError({ status: "invalid-argument", code, message, metadata: { field } });
}

/**
 * The runtime toggles (log level, tracing) an operator changes through the control plane. The application applies
 * them in its listeners (e.g. `logger.level = level` for pino, or swapping the sampler of an OpenTelemetry SDK).
 */
export class RuntimeToggles {
  private logLevel: LogLevel;
  private tracingSettings: TracingSettings;
  private readonly logger: Logger;
  private readonly loggingListeners = new Set<(settings: LoggingSettings) => void>();
  private readonly tracingListeners = new Set<(settings: TracingSettings) => void>();

  /**
   * Creates the toggles with their initial values.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for an unknown log
   * level or an out-of-range sampling probability.
   */
  constructor(options: RuntimeToggleOptions = {}) {
    const level = options.logLevel ?? "info";
    if (!isLogLevel(level))
      throw OmniRelayError.invalidOption("logLevel", `Option 'logLevel' must be one of ${LogLevels.join(", ")}.`);
    this.logLevel = level;
    const enabled = options.tracing?.enabled ?? true;
    const probability = options.tracing?.samplingProbability ?? 1;
    if (typeof enabled !== "boolean")
      throw OmniRelayError.invalidOption("tracing.enabled", "Option 'tracing.enabled' must be a boolean.");
    if (!isProbability(probability)) {
      throw OmniRelayError.invalidOption(
        "tracing.samplingProbability",
        "Option 'tracing.samplingProbability' must be in [0, 1].",
      );
    }
    this.tracingSettings = { enabled, samplingProbability: probability };
    this.logger = options.logger ?? silentLogger;
  }

  /** The current logging settings. */
  get logging(): LoggingSettings {
    return { level: this.logLevel };
  }

  /** The current tracing settings. */
  get tracing(): TracingSettings {
    return this.tracingSettings;
  }

  /**
   * Changes the log level from a JSON body `{ level }` and tells the listeners when it changed.
   * @throws OmniRelayError invalid-argument `omnirelay.control.logging.level_invalid` (metadata `field: level`).
   */
  setLogging(body: Readonly<Record<string, unknown>>): LoggingSettings {
    const level = typeof body.level === "string" ? body.level.trim().toLowerCase() : body.level;
    if (!isLogLevel(level)) {
      throw badInput(
        ErrorCodes.controlPlane.loggingLevelInvalid,
        "level",
        `Field 'level' must be one of ${LogLevels.join(", ")}.`,
      );
    }
    if (level !== this.logLevel) {
      this.logLevel = level;
      this.emit(this.loggingListeners, this.logging);
    }
    return this.logging;
  }

  /**
   * Changes tracing from a JSON body `{ enabled?, samplingProbability? }` (at least one) and tells the listeners
   * when it changed.
   * @throws OmniRelayError invalid-argument `omnirelay.control.tracing.invalid` (metadata `field`).
   */
  setTracing(body: Readonly<Record<string, unknown>>): TracingSettings {
    const { enabled, samplingProbability } = body;
    if (enabled === undefined && samplingProbability === undefined) {
      throw badInput(
        ErrorCodes.controlPlane.tracingInvalid,
        "enabled",
        "Give 'enabled' (boolean) and/or 'samplingProbability' (0..1).",
      );
    }
    if (enabled !== undefined && typeof enabled !== "boolean") {
      throw badInput(ErrorCodes.controlPlane.tracingInvalid, "enabled", "Field 'enabled' must be a boolean.");
    }
    if (samplingProbability !== undefined && !isProbability(samplingProbability)) {
      throw badInput(
        ErrorCodes.controlPlane.tracingInvalid,
        "samplingProbability",
        "Field 'samplingProbability' must be a number in [0, 1].",
      );
    }
    const next: TracingSettings = {
      enabled: enabled ?? this.tracingSettings.enabled,
      samplingProbability: samplingProbability ?? this.tracingSettings.samplingProbability,
    };
    if (
      next.enabled !== this.tracingSettings.enabled ||
      next.samplingProbability !== this.tracingSettings.samplingProbability
    ) {
      this.tracingSettings = next;
      this.emit(this.tracingListeners, next);
    }
    return next;
  }

  /** Calls `listener` after every change of the log level. @returns a function that removes it. */
  onLoggingChange(listener: (settings: LoggingSettings) => void): () => void {
    this.loggingListeners.add(listener);
    return () => this.loggingListeners.delete(listener);
  }

  /** Calls `listener` after every change of the tracing settings. @returns a function that removes it. */
  onTracingChange(listener: (settings: TracingSettings) => void): () => void {
    this.tracingListeners.add(listener);
    return () => this.tracingListeners.delete(listener);
  }

  private emit<T>(listeners: Set<(value: T) => void>, value: T): void {
    for (const listener of [...listeners]) {
      try {
        const result: unknown = listener(value);
        if (result instanceof Promise) result.catch((err: unknown) => this.fail(err));
      } catch (err) {
        this.fail(err);
      }
    }
  }

  private fail(err: unknown): void {
    this.logger.error({ err }, "A runtime toggle listener failed.");
  }
}

function isProbability(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= 1;
}
