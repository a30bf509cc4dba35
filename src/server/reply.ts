/**
 * The one place a message's outcome becomes frames for its sender: status
 * reports (counted for the metrics), the dummy reply, a close. A server-scope
 * session gets its one report under the id its sender gave, then closes.
 * @module
 */
import { ClosedReason } from "../connection/close-reason.ts";
import { frameJson } from "../protocol/frame.ts";
import { dummyReply, GOOD_REPORT_HEAD, GOOD_REPORT_TAIL, statusReport } from "../protocol/reports.ts";
import type { Logger } from "../log/logger.ts";
import type { ClosedReason as Reason } from "../connection/close-reason.ts";
import type { Outcome } from "./outcome.ts";

/** What the reply writer needs of a session. */
export interface ReplyTarget {
  readonly kind: "pending" | "client" | "server";
  /** Server scope: the peer's name, and the id its report names. */
  readonly server: { readonly peer: string; readonly replyTo: string | undefined } | undefined;
  readonly closing: boolean;
  readonly log: Logger;
  readonly host: { reportSent(status: "good" | "bad"): void };
  sendJson(json: string, more?: string, last?: string): boolean;
  close(reason: Reason, detail?: string): void;
}

/** A report with its extra header fields (after status, messageType, error) and its answer data. */
function reportObject(id: string, outcome: Extract<Outcome, { kind: "good" | "bad" }>): object {
  const report = statusReport(id, outcome.kind, outcome.kind === "bad" ? outcome.error : undefined) as {
    header: Record<string, unknown>;
    payload: Record<string, unknown>;
  };
  if (outcome.header !== undefined) Object.assign(report.header, outcome.header);
  if (outcome.kind === "good" && outcome.data !== undefined) report.payload.data = outcome.data;
  return report;
}

/**
 * Writes what `outcome` says to the sender of message `id`. A command is
 * never passed here: the order carries it out first.
 */
export function writeReply(session: ReplyTarget, id: string, outcome: Outcome): void {
  if (session.kind === "server") return answerServer(session, outcome);
  switch (outcome.kind) {
    case "good":
      if (outcome.header === undefined && outcome.data === undefined) session.sendJson(GOOD_REPORT_HEAD, JSON.stringify(id), GOOD_REPORT_TAIL);
      else session.sendJson(frameJson(reportObject(id, outcome)));
      session.host.reportSent("good");
      return;
    case "bad":
      session.sendJson(frameJson(reportObject(id, outcome)));
      session.host.reportSent("bad");
      return;
    case "dummy":
      session.sendJson(frameJson(dummyReply(id)));
      return;
    case "close":
      session.close(ClosedReason.clientRequested);
      return;
    case "command":
      throw new Error("a command reached the reply writer before it was carried out");
  }
}

/** The one message of a server connection is done: report to the sender (if it gave an id) and close. */
function answerServer(session: ReplyTarget, outcome: Outcome): void {
  // A peer's dummy is a ping: its answer is a good report.
  const report = outcome.kind === "bad" ? outcome : outcome.kind === "good" ? outcome : undefined;
  const status = report?.kind ?? "good";
  session.log[status === "good" ? "debug" : "info"]("server message done", {
    peer: session.server?.peer,
    status,
    code: report?.kind === "bad" ? report.error.code : undefined,
  });
  const replyTo = session.server?.replyTo;
  if (replyTo !== undefined) {
    session.sendJson(frameJson(report === undefined ? statusReport(replyTo, "good") : reportObject(replyTo, report)));
    session.host.reportSent(status);
  }
  session.close(ClosedReason.serverMessageDone);
}
