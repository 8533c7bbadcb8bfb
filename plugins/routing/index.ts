import { asciiDomain, domainOf, type HookRegistrar, inject, injectable, type PetrelConfig, type PluginMeta, type QueuedRecipient, type Route, TOKENS, z } from 'petrel';

const domainPattern = z
  .string()
  .min(1)
  .regex(/^(\*|(\*\.)?[^\s*@]+)$/, 'a domain (example.org), its subdomains (*.example.org) or * for every domain');

const target = z.string().min(1).describe('the meta.name of a delivery plugin: relay-mx, relay-smarthost, deliver-lmtp, deliver-maildir…');

export const options = z.strictObject({
  local: target.optional().describe('where mail for server.localDomains goes (deliver-maildir or deliver-lmtp)'),
  routes: z
    .array(
      z.strictObject({
        domains: z.array(domainPattern).min(1),
        target,
        destination: z
          .string()
          .min(1)
          .optional()
          .describe('group and throttle by this name instead of the recipient domain: all recipients of a message on this route go out in one delivery'),
      }),
    )
    .default([])
    .describe('checked in order after the local domains; the first route whose domains match wins'),
  default: target.optional().describe('where everything else goes (usually relay-mx); unset, the first delivery plugin in config order'),
});

type Options = z.output<typeof options>;

interface CompiledRoute {
  readonly matches: (domain: string) => boolean;
  readonly target: string;
  readonly destination?: string;
}

/**
 * Routing by recipient domain, in one place of the config: the local
 * domains (server.localDomains) go to the `local` target, listed domains
 * to the target of the first route that matches (a smarthost, an LMTP
 * server), everything else to `default` (MX delivery). It answers the
 * `route` hook; a plugin with finer rules (by sender, by header) can answer
 * it before this one with a higher priority. See README.md.
 */
@injectable()
export default class Routing {
  static readonly meta: PluginMeta = {
    name: 'routing',
    version: '1.0.0',
    description: 'routes recipients by domain: local domains, listed domains, everything else',
  };
  static readonly options = options;

  readonly #routes: CompiledRoute[] = [];
  /** Where a bare `postmaster` (RFC 5321 4.5.1) belongs: the first local domain, or our hostname. */
  readonly #ownDomain: string;

  constructor(@inject(TOKENS.PluginOptions) opts: Options, @inject(TOKENS.Config) config: PetrelConfig) {
    this.#ownDomain = asciiDomain(config.server.localDomains[0] ?? config.server.hostname);
    if (opts.local) {
      const local = new Set(config.server.localDomains.map(asciiDomain));
      this.#routes.push({ matches: (domain) => local.has(domain) || domain === this.#ownDomain, target: opts.local });
    }
    for (const route of opts.routes) {
      this.#routes.push({ matches: domainMatcher(route.domains), target: route.target, ...(route.destination ? { destination: route.destination } : {}) });
    }
    if (opts.default) this.#routes.push({ matches: () => true, target: opts.default });
  }

  register(hooks: HookRegistrar): void {
    hooks.on('route', (_message, recipient) => this.route(recipient));
  }

  route(recipient: QueuedRecipient): Route | undefined {
    const domain = asciiDomain(domainOf(recipient.address)) || this.#ownDomain;
    const route = this.#routes.find((candidate) => candidate.matches(domain));
    if (!route) return undefined;
    return { target: route.target, destination: route.destination ?? domain };
  }
}

/** `example.org` matches itself, `*.example.org` its subdomains (not itself), `*` anything. */
function domainMatcher(patterns: readonly string[]): (domain: string) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  let any = false;
  for (const pattern of patterns) {
    if (pattern === '*') any = true;
    else if (pattern.startsWith('*.')) suffixes.push(`.${asciiDomain(pattern.slice(2))}`);
    else exact.add(asciiDomain(pattern));
  }
  return (domain) => any || exact.has(domain) || suffixes.some((suffix) => domain.endsWith(suffix));
}
