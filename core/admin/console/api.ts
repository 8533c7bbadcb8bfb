import type { HistoryRecord } from '../../history/history-record.js';
import type { Activity } from '../../history/recent-activity.js';

/**
 * The admin API as the console uses it. Same origin, the sign-in cookie
 * rides along; every request that changes something carries the
 * X-Petrel-Console header the server asks of cookie-authenticated writes.
 */

export type QueueState = 'active' | 'deferred' | 'held';

export interface QueuedRecipient {
  readonly address: string;
  readonly status: 'pending' | 'deferred' | 'delivered' | 'bounced';
  readonly attempts: number;
  readonly lastReply?: string;
}

export interface QueuedMessage {
  readonly id: string;
  readonly envelope: { readonly from: string };
  readonly recipients: readonly QueuedRecipient[];
  readonly origin: { readonly remoteAddress: string; readonly helo?: string; readonly user?: string; readonly listener: string };
  readonly size: number;
  readonly receivedAt: number;
  readonly nextAttemptAt: number;
  readonly attempts: number;
  readonly held: boolean;
  readonly messageId?: string;
}

export interface ShownMessage {
  readonly message?: QueuedMessage;
  readonly headers: string;
  readonly history: readonly HistoryRecord[];
}

export interface Overview extends Activity {
  readonly queue: {
    readonly states: Record<QueueState, number>;
    readonly destinations: readonly { readonly destination: string; readonly messages: number; readonly recipients: number }[];
  };
}

export type BulkAction = 'hold' | 'release' | 'retry' | 'bounce' | 'delete';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { 'x-petrel-console': '1', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const value = text === '' ? null : (JSON.parse(text) as unknown);
  if (!response.ok) throw new ApiError(response.status, (value as { error?: string } | null)?.error ?? response.statusText);
  return value as T;
}

export const api = {
  signedIn: () => call<{ signedIn: boolean }>('GET', '/api/session').then(() => true, () => false),
  signIn: (token: string) => call<{ signedIn: boolean }>('POST', '/api/session', { token }),
  signOut: () => call<{ signedIn: boolean }>('DELETE', '/api/session'),
  overview: () => call<Overview>('GET', '/api/activity'),
  queue: (filter: { state?: string; domain?: string; q?: string }) => {
    const query = new URLSearchParams({ limit: '500' });
    for (const [key, value] of Object.entries(filter)) if (value) query.set(key, value);
    return call<QueuedMessage[]>('GET', `/api/queue?${query}`);
  },
  message: (id: string) => call<ShownMessage>('GET', `/api/queue/${encodeURIComponent(id)}`),
  act: (action: BulkAction, id: string) =>
    action === 'delete' ? call<unknown>('DELETE', `/api/queue/${encodeURIComponent(id)}`) : call<unknown>('POST', `/api/queue/${encodeURIComponent(id)}/${action}`),
  bulk: (action: BulkAction, ids: readonly string[]) => call<{ results: Record<string, unknown> }>('POST', '/api/queue/bulk', { action, ids }),
  raw: async (id: string) => {
    const response = await fetch(`/api/queue/${encodeURIComponent(id)}/raw`, { credentials: 'same-origin' });
    if (!response.ok) throw new ApiError(response.status, await response.text());
    return response.text();
  },
};

/** The state a queued message is in (as the queue's own stateOf). */
export function stateOf(message: QueuedMessage): QueueState {
  if (message.held) return 'held';
  return message.attempts > 0 ? 'deferred' : 'active';
}

export function time(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}
