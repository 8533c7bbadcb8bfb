import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { MTASTSPolicy } from 'mailauth';
import { type Logger, writeAndRename } from 'petrel';

/**
 * MTA-STS policies by domain (RFC 8461 section 5), as mailauth's getPolicy
 * returns them (mta-sts.ts). A policy
 * is fetched over HTTPS when the domain's `_mta-sts` TXT id changes or the
 * cached copy expires (its `max_age`); in between, the TXT lookup alone
 * confirms it. The cache is written to a file so that a restart does not
 * forget an `enforce` policy: a network attacker who can strip the TXT
 * record or block the HTTPS fetch must not be able to downgrade a domain
 * that told us to insist on TLS (RFC 8461 section 10.2).
 */
export class PolicyCache {
  readonly #policies = new Map<string, MTASTSPolicy>();
  #writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Reads the file written by a previous run; a missing or broken file starts empty (and says so). */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err: error, file: this.file }, 'cannot read the MTA-STS policy cache; starting empty');
      return;
    }
    try {
      const stored = JSON.parse(text) as Record<string, MTASTSPolicy>;
      for (const [domain, policy] of Object.entries(stored)) if (this.#worthKeeping(policy)) this.#policies.set(domain, policy);
    } catch (error) {
      this.log.warn({ err: error, file: this.file }, 'the MTA-STS policy cache is not valid JSON; starting empty');
    }
  }

  /**
   * The policy last seen, even an expired one: mailauth decides whether it
   * is still valid, and keeps applying an expired enforce policy when a
   * fresh one cannot be fetched rather than falling back to no policy.
   */
  get(domain: string): MTASTSPolicy | false {
    return this.#policies.get(domain.toLowerCase()) ?? false;
  }

  async set(domain: string, policy: MTASTSPolicy): Promise<void> {
    // The fetch error is for the log, not for the file (an Error does not survive JSON anyway).
    const { error, ...kept } = policy;
    if (error) this.log.warn({ domain, err: error }, `MTA-STS policy of ${domain} could not be refreshed: ${error.message}`);
    const key = domain.toLowerCase();
    const known = this.#policies.get(key);
    // Every delivery looks the policy up again; only a change is worth a disk write.
    if (known !== undefined && JSON.stringify(known) === JSON.stringify(kept)) return;
    if (known === undefined && !this.#worthKeeping(kept)) return;
    this.#policies.set(key, kept);
    await this.#save();
  }

  /** Serialised writes: the file always holds one complete snapshot. */
  #save(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      for (const [domain, policy] of this.#policies) if (!this.#worthKeeping(policy)) this.#policies.delete(domain);
      try {
        await mkdir(dirname(this.file), { recursive: true });
        await writeAndRename(`${this.file}.tmp`, this.file, `${JSON.stringify(Object.fromEntries(this.#policies), null, 1)}\n`);
      } catch (error) {
        this.log.warn({ err: error, file: this.file }, 'cannot write the MTA-STS policy cache; policies are kept in memory only');
      }
    });
    return this.#writing;
  }

  /**
   * Enforce and testing policies are kept past their expiry (see get());
   * "no policy" entries only until they expire, so a domain that starts
   * publishing one is noticed.
   */
  #worthKeeping(policy: MTASTSPolicy): boolean {
    if (policy.mode === 'enforce' || policy.mode === 'testing') return true;
    const expires = policy.expires ? Date.parse(policy.expires) : Number.NaN;
    return Number.isFinite(expires) && expires > this.now();
  }
}
