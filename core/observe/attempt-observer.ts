import { AsyncLocalStorage } from 'node:async_hooks';
import type { ConnectionFacts } from '../history/history-record.js';
import type { TraceHub } from '../trace/trace-hub.js';
import type { TraceSubject } from '../trace/trace-subject.js';
import type { Observer } from './observers.js';

/**
 * Watches one group of one delivery attempt (a target and a destination):
 * the servers it talked to, with their TLS, and what the target noted (the
 * MX it could not use, the MTA-STS or DANE policy it applied). The scheduler
 * makes one per deliver call, runs the call inside it (so an SMTP connection
 * opened meanwhile knows which message it is for) and writes the history
 * record from it afterwards.
 */
export class AttemptObserver implements Observer {
  readonly startedAt = Date.now();
  readonly notes: { at: number; plugin?: string; note: string }[] = [];
  readonly connections: ConnectionFacts[] = [];

  constructor(
    readonly hub: TraceHub | undefined,
    readonly qid: string,
    readonly destination: string,
  ) {}

  finding(plugin: string, text: string): void {
    if (this.notes.length < 100) this.notes.push({ at: Date.now(), plugin, note: text });
    if (this.hub?.clientWatched) {
      const subject: TraceSubject = { side: 'client', conn: this.qid, remote: '', domain: this.destination, qid: this.qid, senders: [], recipients: [] };
      this.hub.publish({ kind: 'note', at: Date.now(), side: 'client', conn: this.qid, qid: this.qid, plugin, text }, subject);
    }
  }

  connected(facts: ConnectionFacts): void {
    if (this.connections.length < 20) this.connections.push(facts);
  }
}

const current = new AsyncLocalStorage<AttemptObserver>();

/** Runs a deliver call inside its attempt: SmtpSession.open finds it with currentAttempt(). */
export function runInAttempt<T>(attempt: AttemptObserver, run: () => T): T {
  return current.run(attempt, run);
}

/** The delivery attempt this code runs for, if any (a connection opened by a target inside a deliver call). */
export function currentAttempt(): AttemptObserver | undefined {
  return current.getStore();
}
