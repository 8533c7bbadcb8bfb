import type { MTASTSPolicy } from 'mailauth';
import { getPolicy, validateMx } from 'mailauth/lib/mta-sts.js';
import { type DnsResolver, type Logger, NetworkList, type RecordType } from 'petrel';
import type { PolicyCache } from './mta-sts-cache.js';

/** What the policy says about one MX: may we use it, and must TLS be verified there. */
export interface MxVerdict {
  /** False only when an `enforce` policy does not list the MX: it must not be contacted. */
  readonly allowed: boolean;
  /** The policy is `enforce` and lists the MX: TLS with a certificate valid for its name is required. */
  readonly enforced: boolean;
  /** A policy (enforce or testing) lists the MX: its name is vouched for over HTTPS, as REQUIRETLS asks. */
  readonly listed: boolean;
}

/** Loopback, private, link-local, shared and unspecified networks: where a policy host on the Internet cannot be. */
const LOCAL_NETWORKS = new NetworkList([
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16',
  '::/128', '::1/128', 'fc00::/7', 'fe80::/10',
]);

/**
 * MTA-STS (RFC 8461) for relay-mx, with mailauth's policy module: the
 * `_mta-sts` TXT record through our resolver, the policy file fetched over
 * HTTPS from `mta-sts.<domain>` when the record's id changed or the cached
 * copy expired, then each MX judged against the policy. mx-connect has an
 * MTA-STS step of its own, but it pins mailauth 5, whose cache handling
 * refetches valid policies and forgets an enforce policy when the fetch
 * fails; so relay-mx asks mailauth 7 directly, once per connection rather
 * than once per MX host.
 */
export class MtaSts {
  readonly #resolver: (name: string, type: string) => Promise<unknown[]>;

  constructor(
    private readonly cache: PolicyCache,
    dns: DnsResolver,
    blockLocalAddresses: boolean,
    private readonly log: Logger,
    private readonly fetchTimeout = 30_000,
  ) {
    this.#resolver = async (name, type) => {
      const answers = await dns.resolve(name, type as RecordType);
      if (!blockLocalAddresses || (type !== 'A' && type !== 'AAAA')) return answers;
      // A policy host on a local address would turn every delivery into a request to an internal service.
      return answers.filter((address) => {
        const local = LOCAL_NETWORKS.contains(String(address));
        if (local) this.log.warn({ host: name, ip: address }, 'MTA-STS policy host resolves to a local address; ignored');
        return !local;
      });
    };
  }

  /** The policy of `domain` (mode `none` when it has none or it cannot be had and none was cached). */
  async policyOf(domain: string): Promise<MTASTSPolicy> {
    const known = this.cache.get(domain) || undefined;
    const { policy, status, warnings } = await getPolicy(domain, known, { resolver: this.#resolver as never, timeout: this.fetchTimeout });
    if (status === 'found') this.log.info({ domain, mode: policy.mode, mx: policy.mx, maxAge: policy.maxAge }, `MTA-STS policy of ${domain} fetched`);
    if (warnings?.length) this.log.debug({ domain, warnings }, 'MTA-STS policy accepted with lax syntax');
    await this.cache.set(domain, policy);
    return policy;
  }

  /** Judges one MX; a mismatch under `testing` is logged and allowed. */
  judge(domain: string, exchange: string, policy: MTASTSPolicy | undefined): MxVerdict {
    if (!policy || policy.mode === 'none') return { allowed: true, enforced: false, listed: false };
    const match = validateMx(exchange, policy);
    if (match.valid) return { allowed: true, enforced: policy.mode === 'enforce', listed: true };
    if (policy.mode === 'testing') {
      this.log.warn({ domain, mx: exchange, mode: policy.mode, allowed: policy.mx }, 'MTA-STS policy check failed (testing mode: delivering anyway)');
      return { allowed: true, enforced: false, listed: false };
    }
    this.log.warn({ domain, mx: exchange, mode: policy.mode, allowed: policy.mx }, 'MTA-STS policy check failed: MX not in the enforced policy; not contacting it');
    return { allowed: false, enforced: true, listed: false };
  }
}
