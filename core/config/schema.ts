import { hostname } from 'node:os';
import { z } from 'zod';
import { limitsSchema, listenerLimitsSchema } from './limits-schema.js';
import { shapingSchema } from './shaping-schema.js';
import { cidr, dnsServer, duration, port, size } from './units.js';
import { ALL_HOOK_NAMES, type HookName } from '../hooks/catalogue.js';
import { DEFAULT_DESTINATION_LABELS } from '../metrics/destination-labels.js';

/**
 * The schema of mta.config.yaml. Every object is strict: an unknown key is an
 * error, so a typo never passes silently. Defaults are the values an operator
 * would want on an Internet-facing server; docs/configuration.md lists them.
 */

const certificateFiles = z.strictObject({
  cert: z.string().min(1).describe('PEM certificate chain file'),
  key: z.string().min(1).describe('PEM private key file'),
});

const sniEntry = certificateFiles.extend({
  names: z.array(z.string().min(1)).min(1).describe('server names (SNI) this certificate serves; *.example.org allowed'),
});

const tlsSchema = z
  .strictObject({
    cert: z.string().min(1).optional().describe('PEM certificate chain file for the default name'),
    key: z.string().min(1).optional().describe('PEM private key file for the default name'),
    sni: z.array(sniEntry).default([]).describe('further certificates chosen by the name the client asks for'),
    selfSigned: z
      .boolean()
      .default(false)
      .describe('generate a self-signed certificate under dataDir when cert/key are not set (development only)'),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  })
  .refine((tls) => (tls.cert === undefined) === (tls.key === undefined), {
    message: 'cert and key must be given together',
  });

const listenerSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, 'a name of letters, digits, - and _').describe('used in logs and by plugins'),
  host: z.string().min(1).default('0.0.0.0'),
  port: port(),
  tls: z
    .enum(['none', 'starttls', 'starttls-required', 'implicit'])
    .default('starttls')
    .describe('none, STARTTLS offered, STARTTLS required before MAIL, or TLS from the first byte (port 465)'),
  auth: z.boolean().default(false).describe('offer AUTH on this listener (needs an auth plugin)'),
  submission: z.boolean().default(false).describe('a submission port: relaying needs AUTH'),
  insecureAuth: z
    .boolean()
    .default(false)
    .describe('allow AUTH without TLS; only honoured for clients on loopback (development)'),
  greetingDelay: duration()
    .default(0)
    .describe('pause before the 220 greeting; a client that talks first is dropped (anti-spam, MX only)'),
  reverseDns: z.boolean().optional().describe('override dns.reverseLookup for this listener'),
  proxyProtocol: z
    .array(cidr())
    .default([])
    .describe('load balancers (CIDR) whose connections start with a PROXY protocol v1/v2 header naming the real client'),
  xclient: z
    .array(cidr())
    .default([])
    .describe('hosts (CIDR) allowed to use XCLIENT to set the client address, name and login (Postfix-style front ends)'),
  offerRequireTls: z
    .boolean()
    .default(false)
    .describe('offer REQUIRETLS (RFC 8689) over TLS: only if every delivery target of REQUIRETLS mail honours it'),
  vrfy: z
    .enum(['cannot-verify', 'disabled'])
    .default('cannot-verify')
    .describe('VRFY and EXPN: cannot-verify answers 252 (RFC 5321 3.5.3), disabled answers 502; neither discloses addresses'),
  limits: listenerLimitsSchema,
});

const hookTimeouts = z.strictObject(
  Object.fromEntries(ALL_HOOK_NAMES.map((name) => [name, duration().optional()])) as Record<
    HookName,
    z.ZodOptional<ReturnType<typeof duration>>
  >,
);

const pluginEntry = z
  .strictObject({
    name: z.string().min(1).optional().describe('a built-in plugin (plugins/<name>/)'),
    path: z.string().min(1).optional().describe('a plugin file, relative to this config file'),
    package: z.string().min(1).optional().describe('an npm package exporting a plugin class'),
    enabled: z.boolean().default(true),
    priority: z
      .number()
      .int()
      .optional()
      .describe("added to the priority of each of the plugin's handlers; higher runs earlier within a hook; ties keep config order"),
    timeout: duration().optional().describe('handler timeout for every hook of this plugin'),
    timeouts: hookTimeouts.optional().describe('handler timeout per hook for this plugin'),
    startTimeout: duration()
      .optional()
      .describe('how long its start() may take before the server gives up starting (default 60s; a queue recovering a large backlog may need more)'),
    options: z.record(z.string(), z.unknown()).default({}),
  })
  .refine((entry) => [entry.name, entry.path, entry.package].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of name, path or package',
  });

/** Postfix-like backoff: minutes at first, then hours; the last step repeats until expiry. */
const DEFAULT_RETRY_SCHEDULE = ['5m', '10m', '20m', '40m', '80m', '2h', '3h', '4h'];

const emailAddress = z.string().regex(/^[^@\s<>]+@[^@\s<>]+$/, 'an address like postmaster@example.org');

const deliverySchema = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe('run the delivery scheduler on this node; false makes a node that only accepts mail into a shared queue'),
  concurrency: z
    .strictObject({
      total: z.number().int().min(1).default(100).describe('messages being delivered at once on this node'),
      perDestination: z
        .number()
        .int()
        .min(1)
        .default(10)
        .describe('deliveries at once to one destination (domain, smarthost), unless delivery.shaping says otherwise'),
    })
    .prefault({}),
  retry: z
    .array(duration())
    .min(1)
    .prefault(DEFAULT_RETRY_SCHEDULE)
    .describe('wait before each retry after a temporary failure; the last value repeats'),
  expireAfter: duration().prefault('5d').describe('a message still undelivered this long after it arrived bounces (4.4.7)'),
  delayWarningAfter: duration()
    .prefault('4h')
    .describe('send one "delayed" DSN when a recipient is still deferred this long after arrival; 0 turns it off'),
  leaseTime: duration()
    .prefault('15m')
    .describe('how long a node owns a message it is delivering; after a crash others take it over after this; at least shaping.maxWait plus the longest deliver timeout'),
  idlePoll: duration()
    .prefault('5s')
    .describe('longest sleep between looks at the queue when nothing wakes the scheduler (other nodes, clock jumps)'),
  bounces: z
    .strictObject({
      from: z.string().min(1).default('MAILER-DAEMON').describe('local part (or full address) of the From: of DSNs'),
      postmaster: emailAddress
        .optional()
        .describe('where double bounces go (a DSN that could not be delivered); unset: they are dropped with a log line'),
      returnFullUpTo: size()
        .prefault('256KiB')
        .describe('without RET=, a failure DSN returns the whole message up to this size, else its headers'),
    })
    .prefault({}),
  shaping: shapingSchema.describe('per-destination connections, message rates and back-off (docs/rate-limiting.md#outbound-shaping)'),
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      hostname: z.string().min(1).default(hostname()).describe('our name in the greeting, Received and Authentication-Results'),
      dataDir: z.string().min(1).default('./data').describe('all state lives here, relative to the config file'),
      localDomains: z
        .array(z.string().min(1))
        .default([])
        .describe('domains this server receives mail for (final destination)'),
      shutdownTimeout: duration().prefault('30s').describe('how long open transactions may finish on SIGTERM'),
      user: z
        .string()
        .min(1)
        .optional()
        .describe('started as root, switch to this account once the ports are bound (required as root; "root" stays root); it must own dataDir'),
      group: z.string().min(1).optional().describe("with user: the group to switch to (default: the user's primary group)"),
      workers: z
        .union([z.int().min(1).max(256), z.literal('auto')])
        .default(1)
        .describe('processes that accept and deliver mail, sharing the listeners: a number, or auto for one per core (1: a single process, no primary)'),
    })
    .refine((server) => server.group === undefined || server.user !== undefined, { message: 'server.group needs server.user', path: ['group'] })
    .prefault({}),
  listeners: z.array(listenerSchema).min(1),
  tls: tlsSchema.optional(),
  limits: limitsSchema.describe('what one client may cost: sizes, connections, time, errors; per listener under listeners[].limits'),
  dns: z
    .strictObject({
      servers: z
        .array(dnsServer())
        .min(1, 'expected at least one name server, or no `servers` key for the system resolver')
        .optional()
        .describe('name servers to ask instead of the ones in /etc/resolv.conf, as 127.0.0.1, 127.0.0.1:5353 or [::1]:53; for DNSBLs and DANE, a local validating resolver'),
      reverseLookup: z.boolean().default(true).describe('look up the client name (PTR, forward-confirmed)'),
      timeout: duration().prefault('3s').describe('per DNS query and try (two tries per server)'),
      cacheTtl: duration().prefault('5m'),
    })
    .prefault({}),
  hooks: z
    .strictObject({
      timeouts: hookTimeouts.prefault({}),
    })
    .prefault({}),
  delivery: deliverySchema.prefault({}),
  redis: z
    .strictObject({
      url: z.string().min(1).default('redis://127.0.0.1:6379').describe('a single Redis (redis:// or rediss://)'),
      keyPrefix: z.string().default('petrel:'),
      cluster: z
        .array(z.string().regex(/^[^:\s]+:\d+$/, 'host:port'))
        .min(1)
        .optional()
        .describe('Redis Cluster seed nodes (host:port); url is then ignored'),
      sentinel: z
        .strictObject({
          name: z.string().min(1).describe('the master group name'),
          nodes: z.array(z.string().regex(/^[^:\s]+:\d+$/, 'host:port')).min(1).describe('sentinels (host:port)'),
          password: z.string().optional().describe('password of the Redis master and replicas'),
        })
        .optional()
        .describe('find the master through Redis Sentinel; url is then ignored'),
      commandTimeout: duration()
        .prefault('5s')
        .describe('a command without an answer this long fails (so a client gets 451 instead of waiting)'),
    })
    .refine((redis) => !(redis.cluster && redis.sentinel), { message: 'give cluster or sentinel, not both' })
    .optional()
    .describe('only when a plugin needs it; absent means no Redis connection is made'),
  admin: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1').describe('keep it on loopback or a management network'),
      port: port(),
      token: z.string().optional().describe('bearer token for /api/* and the sign-in of the web console; take it from the environment: ${PETREL_ADMIN_TOKEN}'),
      console: z.boolean().default(true).describe('serve the web console at / (only when token is set)'),
      metricsAuth: z
        .enum(['none', 'token'])
        .default('none')
        .describe('none: /metrics is open like /health; token: /metrics needs the bearer token too (Prometheus: authorization: { credentials: ... })'),
      metricsDestinations: z
        .number()
        .int()
        .min(0)
        .default(DEFAULT_DESTINATION_LABELS)
        .describe('destination domains with a label of their own in the delivery metrics (the busiest; the rest are counted as "other"), so a server that sends everywhere keeps its series bounded; read at start'),
    })
    .refine((admin) => admin.metricsAuth !== 'token' || (admin.token ?? '') !== '', {
      message: 'metricsAuth: token needs admin.token (it is unset or empty)',
      path: ['metricsAuth'],
    })
    .optional()
    .describe('the admin HTTP listener: /metrics, /health, /ready and the /api queue, plugin and config endpoints'),
  history: z
    .strictObject({
      enabled: z.boolean().default(true).describe("keep each message's history (petrel queue show, petrel why, the console) and a record of refusals"),
      retention: duration()
        .prefault('7d')
        .describe('how long a message’s history is kept after it left the queue (and refusals after they happened)'),
      maxSize: size().prefault('1GiB').describe('disk space for the history of accepted messages at most; the oldest days go first'),
      refusalsMaxSize: size()
        .prefault('128MiB')
        .describe('disk space for the record of refused transactions at most, so a flood of refusals cannot push out the history of mail'),
    })
    .prefault({})
    .describe('history under dataDir/history/ (docs/operations.md#message-history)'),
  logging: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      format: z
        .enum(['auto', 'json', 'pretty'])
        .default('auto')
        .describe('json: one JSON object a line (for journald, Loki); pretty: readable lines; auto: pretty on a terminal, JSON otherwise'),
    })
    .prefault({}),
  plugins: z.array(pluginEntry).default([]),
});

export type PetrelConfig = z.output<typeof configSchema>;
export type ListenerConfig = PetrelConfig['listeners'][number];
export type PluginEntryConfig = PetrelConfig['plugins'][number];
export type HookTimeoutsConfig = z.output<typeof hookTimeouts>;
export type TlsConfig = NonNullable<PetrelConfig['tls']>;
export type DeliveryConfig = PetrelConfig['delivery'];
export type RedisConfig = NonNullable<PetrelConfig['redis']>;

