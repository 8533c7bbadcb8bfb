import type { ExpiringStore } from '../util/expiring-store.js';
import type { WorkerChannel } from './worker-channel.js';

/**
 * A worker's view of an in-memory ExpiringStore that the primary keeps for
 * all workers (AUTH failure counters and lockouts, greylisting): a client
 * whose connections the kernel spreads over the workers meets one counter,
 * not one per worker. Each call is one IPC round trip; a Redis store (when
 * the config has `redis:`) is used as before and never goes through here.
 */
export class SharedExpiringStore implements ExpiringStore {
  constructor(
    private readonly channel: WorkerChannel,
    private readonly namespace: string,
  ) {}

  async increment(key: string, ttlMs: number): Promise<number> {
    return (await this.#call('increment', key, ttlMs)) as number;
  }

  async decrement(key: string): Promise<void> {
    await this.#call('decrement', key);
  }

  async get(key: string): Promise<string | undefined> {
    return ((await this.#call('get', key)) as string | null) ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#call('set', key, value, ttlMs);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.#call('setIfAbsent', key, value, ttlMs)) as boolean;
  }

  async delete(key: string): Promise<void> {
    await this.#call('delete', key);
  }

  #call(method: Parameters<WorkerChannel['store']>[0]['method'], ...args: (string | number)[]): Promise<unknown> {
    return this.channel.store({ namespace: this.namespace, method, args });
  }
}
