import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";

/** One message of an append, sent again until acknowledged or refused. Internal. */
export interface AppendMessage {
  readonly subject: string;
  readonly body: Uint8Array;
  readonly headers: MsgHdrs;
  /** The stream's last sequence on the subject that this message must follow. */
  readonly expectedLastSubjectSequence: number;
  /** Unique per message and writer: a resend within the stream's duplicate window is answered with the first ack. */
  readonly msgId: string;
}

/** How long and how often an append is sent again. Internal. */
export interface AppendRetry {
  readonly timeoutMs: number;
  /** Keep resending for this long after the first send (0: send once). */
  readonly retryMs: number;
}

/** Whether a publish failure is JetStream's answer (an API error such as "wrong last sequence"): never resent. */
export function isApiError(error: unknown): boolean {
  return typeof (error as { code?: unknown } | null)?.code === "number";
}

/**
 * Publishes one message of an append with `Nats-Msg-Id` and the expected last subject sequence; when no answer comes
 * (a timeout, no responders while the stream elects a new leader, a dropped connection) it sends the same message
 * again until `retryMs` has passed. Resending is safe: JetStream checks the message id before the expected sequence
 * (tested on 2.9.10), so a message that did land the first time is answered with its first ack (`duplicate`), and
 * one that did not is appended only if nobody appended since. An API error (refused) is thrown at once. Internal.
 */
export async function publishWithRetry(
  js: JetStreamClient,
  message: AppendMessage,
  retry: AppendRetry,
): Promise<PubAck> {
  const deadline = Date.now() + retry.retryMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await js.publish(message.subject, message.body, {
        headers: message.headers,
        msgID: message.msgId,
        expect: { lastSubjectSequence: message.expectedLastSubjectSequence },
        timeout: retry.timeoutMs,
      });
    } catch (error) {
      const pause = Math.min(1000, 100 * 2 ** attempt);
      if (isApiError(error) || Date.now() + pause >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}
