import { networkOf } from '../util/ip-address.js';

/** Wrong tokens an address may try per window before it must wait for the window to end. */
export const TOKEN_GUESSES_PER_WINDOW = 10;
export const TOKEN_GUESS_WINDOW_MS = 15 * 60_000;
/** Addresses remembered at most; the oldest are forgotten first (a flood of addresses cannot grow memory). */
const MAX_ADDRESSES = 10_000;

interface Guesses {
  count: number;
  windowEnds: number;
}

/**
 * Slows down guessing of the admin token: each client address (an IPv6
 * client by its /64, which one host usually holds whole) may give a wrong
 * token 10 times in 15 minutes; after that every request of it that
 * carries a token (right or wrong, bearer or sign-in) is answered 429
 * until the window ends, so a guesser learns nothing more. Console session
 * cookies are not counted: they are random 256-bit ids, and a browser left
 * open across a restart would otherwise lock its operator out.
 */
export class TokenGuessThrottle {
  readonly #guesses = new Map<string, Guesses>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Seconds the address must wait before its token is looked at again, or undefined when it may try. */
  waitSeconds(address: string): number | undefined {
    const key = keyOf(address);
    const guesses = this.#guesses.get(key);
    if (!guesses) return undefined;
    const now = this.now();
    if (guesses.windowEnds <= now) {
      this.#guesses.delete(key);
      return undefined;
    }
    return guesses.count >= TOKEN_GUESSES_PER_WINDOW ? Math.ceil((guesses.windowEnds - now) / 1000) : undefined;
  }

  wrong(address: string): void {
    const key = keyOf(address);
    const now = this.now();
    const guesses = this.#guesses.get(key);
    if (guesses && guesses.windowEnds > now) {
      guesses.count++;
      return;
    }
    this.#guesses.delete(key);
    if (this.#guesses.size >= MAX_ADDRESSES) this.#guesses.delete(this.#guesses.keys().next().value!);
    this.#guesses.set(key, { count: 1, windowEnds: now + TOKEN_GUESS_WINDOW_MS });
  }

  /** The right token: whatever the address got wrong before (a typo) is forgotten. */
  right(address: string): void {
    this.#guesses.delete(keyOf(address));
  }
}

function keyOf(address: string): string {
  return networkOf(address, 32, 64);
}
