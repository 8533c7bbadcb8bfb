import type { Logger } from '../log/logger.js';
import { observerOf } from '../observe/observers.js';
import type { InboundHookArgs, InboundHookName } from './catalogue.js';
import type { HookRegistry, RegisteredHandler } from './registry.js';
import { checkedResult, defer, isDecisive, next, type HookResult } from './results.js';

/** The result of running one hook, and which plugin decided it. */
export interface HookRun {
  readonly result: HookResult;
  /** Undefined when every handler said next(). */
  readonly decidedBy?: string;
}

/**
 * The reply a client gets when a handler throws or runs out of time. The
 * details go to the log, not to the client.
 */
export const HANDLER_FAILED = defer(451, '4.3.0', 'Temporary local problem, please try again later');

const UNDECIDED: HookRun = Object.freeze({ result: next() });

class HandlerTimeout extends Error {
  constructor(ms: number) {
    super(`did not answer within ${ms} ms`);
    this.name = 'HandlerTimeout';
  }
}

/**
 * Runs the handlers of one hook in order until one decides. A handler that
 * throws, rejects, returns something that is not a valid result (checked as
 * the helpers check their arguments: `checkedResult`), or runs past its
 * timeout counts as a temporary failure (451 4.3.0) with a log line naming
 * the plugin; it never crashes the process or ends the session. Each call
 * gets its own AbortSignal, aborted at the timeout, so the handler can stop
 * what it was doing. Each handler's
 * answer and time go to the session's observer (its live trace and history,
 * core/observe/), when the session has one.
 */
export class HookRunner {
  constructor(private readonly registry: HookRegistry) {}

  async run<H extends InboundHookName>(hook: H, log: Logger, ...args: InboundHookArgs<H>): Promise<HookRun> {
    const handlers = this.registry.handlers(hook);
    // Every inbound hook's first argument is the session.
    const observer = observerOf(args[0]);
    for (const entry of handlers) {
      let result: HookResult;
      const started = observer ? performance.now() : 0;
      try {
        result = await this.registry.call(entry, () => this.#call(entry, args));
      } catch (error) {
        log.error(
          { plugin: entry.plugin, hook, err: error, code: 'PETREL_HOOK_FAILED' },
          `plugin ${entry.plugin} failed in ${hook} hook: ${(error as Error)?.message ?? String(error)}`,
        );
        observer?.verdict?.(hook, entry.plugin, undefined, performance.now() - started);
        return { result: HANDLER_FAILED, decidedBy: entry.plugin };
      }
      observer?.verdict?.(hook, entry.plugin, result, performance.now() - started);
      if (isDecisive(result)) return { result, decidedBy: entry.plugin };
    }
    return UNDECIDED;
  }

  async #call<H extends InboundHookName>(entry: RegisteredHandler<H>, args: InboundHookArgs<H>): Promise<HookResult> {
    const abort = new AbortController();
    // The catalogue types each hook's handler; here every hook is called alike.
    const handler = entry.handler as unknown as (...a: unknown[]) => HookResult | Promise<HookResult>;
    const outcome = handler(...args, abort.signal);
    return checkedResult(isPromiseLike(outcome) ? await withTimeout(outcome, entry.timeoutMs, abort) : outcome);
  }
}

/**
 * Rejects with a HandlerTimeout when `promise` has not settled within `ms`,
 * and then aborts `abort` (with the same error as its reason), so whoever
 * holds its signal stops working for a result nobody waits for.
 */
export function withTimeout<T>(promise: PromiseLike<T>, ms: number, abort?: AbortController): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const timeout = new HandlerTimeout(ms);
      reject(timeout);
      abort?.abort(timeout);
    }, ms);
    // A handler that never settles (a delivery aborted at shutdown) must not keep the process alive.
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function isPromiseLike(value: unknown): value is PromiseLike<HookResult> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}

