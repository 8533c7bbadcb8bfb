/**
 * Petrel's public API for plugin authors: `import { ... } from 'petrel'`.
 * Everything here is covered by semver; anything imported from deeper paths
 * is internal.
 */
import 'reflect-metadata';

export { inject, injectable } from 'tsyringe';
export { z } from 'zod';

export { accept, defer, disconnect, next, reject } from './hooks/results.js';
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
export type { OptionsOf, Plugin, PluginClass, PluginMeta } from './plugins/contract.js';
export type { Address, Credentials, HeloInfo, ListenerInfo, Notes, Session, TlsInfo, Transaction } from './session.js';
export { IncomingMessage } from './spool/incoming-message.js';
export type { HeaderField, MessageHeaders } from './spool/message-headers.js';
export { TOKENS } from './di/tokens.js';
export type { Clock } from './clock.js';
export type { DnsResolver, DnssecAnswer, DnssecRecordType, RecordType } from './dns/resolver.js';
export type { Logger } from './log/logger.js';
export type { Paths } from './paths.js';
export type { ExpiringStore, ExpiringStores, StoreChoice } from './util/expiring-store.js';
export type * from './queue/contract.js';
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
export { SmtpSession } from './delivery/smtp-client/smtp-session.js';
export { ConnectionPool } from './delivery/smtp-client/connection-pool.js';
export type { PoolLimits, PooledConnection } from './delivery/smtp-client/connection-pool.js';
export { sendPooled } from './delivery/smtp-client/pooled-send.js';
export { poolOptions } from './delivery/smtp-client/pool-options.js';
export { DeliveryFailure } from './delivery/smtp-client/delivery-failure.js';
export { connectFailure, transactionFailure } from './delivery/smtp-client/client-errors.js';
export type { SmtpClientError } from './delivery/smtp-client/client-errors.js';
export { stateOf } from './queue/contract.js';
export type { PetrelConfig } from './config/schema.js';
export { ConfigError } from './config/config-error.js';
export type { ConfigIssue } from './config/config-error.js';
export { configFromObject, loadConfigFile, parseConfigText } from './config/load.js';
export { Petrel } from './petrel.js';
export type { PetrelOptions } from './petrel.js';
export { PetrelError, ERROR_CODES } from './errors.js';
export { checkFileAtStart } from './util/file-at-start.js';
export type { FileAtStart } from './util/file-at-start.js';
export type { ErrorCode } from './errors.js';
