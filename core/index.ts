/**
 * Petrel's public API for plugin authors: `import { ... } from 'petrel'`.
 * It is exactly what the built-in plugins use (a test keeps plugins/ from
 * importing anything else), so every built-in is proof that a plugin of
 * your own can do the same. Sub-paths for narrower jobs:
 *
 * - `petrel/delivery` — an SMTP/LMTP client toolkit for delivery targets
 * - `petrel/queue`    — helpers for implementing a queue plugin
 * - `petrel/testing`  — a real server on port 0 and an SMTP client, for tests
 *
 * Everything exported from these entry points is covered by semver; anything
 * imported from deeper paths is internal.
 */
import 'reflect-metadata';
import './plugins/one-petrel.js';

// --- Plugins: the contract, injection, options ---------------------------------------
/** Use these, not tsyringe's own: a plugin's decorators must register where Petrel's container looks. */
export { inject, injectable } from 'tsyringe';
export { z } from 'zod';
export { TOKENS } from './di/tokens.js';
export type { OptionsOf, Plugin, PluginClass, PluginMeta } from './plugins/contract.js';
export type { CommandContext, CommandFlags, CommandOption, PluginCommand } from './cli/plugin-command.js';
export { cidr, duration, parseDuration, parseSize, port, regularExpression, size } from './config/units.js';
export { describeDuration } from './util/describe-duration.js';

// --- Hooks and their answers ------------------------------------------------------------
export { accept, defer, disconnect, isDecisive, next, reject } from './hooks/results.js';
export { noteFinding } from './observe/observers.js';
export type {
  AcceptResult,
  DecisiveResult,
  DeferResult,
  DisconnectResult,
  EnhancedCode,
  HookResult,
  NextResult,
  PermanentCode,
  PermanentEnhancedCode,
  RejectResult,
  SmtpReply,
  TransientCode,
  TransientEnhancedCode,
} from './hooks/results.js';
export type { HookArgs, HookHandler, HookMap, HookName, HookOutcome, InboundHookArgs, InboundHookMap, InboundHookName, OutboundHookMap, OutboundHookName } from './hooks/catalogue.js';
export { ALL_HOOK_NAMES, DEFAULT_HOOK_TIMEOUTS, HOOK_NAMES, OUTBOUND_HOOK_NAMES } from './hooks/catalogue.js';
export type { HandlerOptions, HookRegistrar } from './hooks/registry.js';

// --- What inbound hooks see -------------------------------------------------------------
export type { Address, Credentials, HeloInfo, ListenerInfo, Notes, Session, TlsInfo, TlsMode, Transaction } from './session.js';
export { IncomingMessage } from './spool/incoming-message.js';
export type { HeaderField, MessageHeaders } from './spool/message-headers.js';
export { addRecipient, changeSender, removeRecipient } from './smtp/envelope-edits.js';

// --- What outbound hooks see and answer -------------------------------------------------
export type {
  BouncedEvent,
  BouncedVerdict,
  DeferredEvent,
  DeferredVerdict,
  DeliveredEvent,
  Delivery,
  DeliveryLimits,
  DeliveryOutcome,
  DeliveryReply,
  Handoff,
  OpenOptions,
  OutboundMessage,
  OutgoingContent,
  RecipientReport,
  RecipientResult,
  Route,
  RouteOutcome,
} from './delivery/outbound.js';
export { formatReply, parseReply, results } from './delivery/outbound.js';
export { domainOf } from './delivery/outbound-hooks.js';

// --- Services a plugin can inject (TOKENS) ------------------------------------------------
export type { PetrelConfig } from './config/schema.js';
export type { Paths } from './paths.js';
export type { Clock } from './clock.js';
export type { DnsResolver, DnssecAnswer, DnssecRecordType, RecordType } from './dns/resolver.js';
export { isNoRecord } from './dns/resolver.js';
export type { Logger } from './log/logger.js';
export type { Metrics } from './metrics/metrics.js';
export type { Spool } from './spool/spool.js';
export type * from './queue/contract.js';
export { stateOf } from './queue/contract.js';
export type { RedisClient } from './redis/redis-client.js';
export { duplicateClient, redisMasters } from './redis/redis-topology.js';

// --- Policy: check actions and the marks they leave --------------------------------------
export { CHECK_ACTIONS, checkAction, isMark, severest } from './policy/check-action.js';
export type { CheckAction } from './policy/check-action.js';
export { addPolicyMark, isQuarantined, QUARANTINE_HEADER, quarantineOf, WARNING_HEADER, writePolicyMarks } from './policy/policy-marks.js';

// --- Content scanners: shared options, the failure rule, verdicts ----------------------------
export { scanMessage, ScanFailure, UNSCANNED_REPLY } from './filter/content-scan.js';
export type { ScanOutcome, ScanRequest } from './filter/content-scan.js';
export { scanOptions } from './filter/scan-options.js';
export type { ScanOptionDefaults, ScanOptions } from './filter/scan-options.js';
export { describeVerdict, FILTER_HEADER, recordVerdict, scanSummary } from './filter/scan-verdict.js';
export type { ScanVerdict } from './filter/scan-verdict.js';

// --- Addresses and networks ---------------------------------------------------------------
export { asciiDomain, splitAddress } from './util/mail-address.js';
export { isLoopback, NetworkList, parseCidr, unmapIPv4 } from './util/networks.js';
export { ipv6Groups, ipv6Hex, networkOf } from './util/ip-address.js';

// --- State that expires, counters, files --------------------------------------------------
export { MemoryExpiringStore, RedisExpiringStore } from './util/expiring-store.js';
export type { ExpiringStore, ExpiringStores, StoreChoice } from './util/expiring-store.js';
export type { Budget, Rate, TakeMode } from './rate/gcra.js';
export { StoreUnavailableError } from './rate/limit-store.js';
export type { LimitStore, SlotResult, TakeOptions } from './rate/limit-store.js';
export { MemoryStore } from './rate/memory-store.js';
export { RedisStore } from './rate/redis-store.js';
export type { RedisStoreOptions } from './rate/redis-store.js';
export { WatchedFile } from './util/watched-file.js';
export { checkFileAtStart } from './util/file-at-start.js';
export type { FileAtStart } from './util/file-at-start.js';
export { DirectorySyncer, fsyncDirectory, fsyncFile, writeAndRename } from './util/durable-fs.js';
export { PidLock } from './util/pid-lock.js';
export { asOwnerOf } from './privileges/as-owner.js';
export { processIsAlive } from './util/process-alive.js';

// --- Errors --------------------------------------------------------------------------------
export { PetrelError, ERROR_CODES } from './errors.js';
export type { ErrorCode } from './errors.js';
export { ConfigError } from './config/config-error.js';
export type { ConfigIssue } from './config/config-error.js';

// --- Running Petrel inside your own program -------------------------------------------------
export type { LoadedConfig } from './config/load.js';
export { configFromObject, loadConfigFile, parseConfigText } from './config/load.js';
export { Petrel } from './petrel.js';
export type { PetrelOptions } from './petrel.js';
export { PETREL_VERSION } from './version.js';
