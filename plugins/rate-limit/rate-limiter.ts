import { type Credentials, type HeloInfo, type HookResult, type IncomingMessage, isDecisive, type Logger, type NetworkList, next, type Session, type TakeMode, type Transaction } from 'petrel';
import { allPass, resultOf, type Charge, type LimitChecks, type Verdict } from './limit-checks.js';
import { keyValue, type KeyKind } from './rule-keys.js';
import { isRecipientKey, type Rule } from './rules.js';

/** Per-session state, in `session.notes` under names of our own. */
const NOTES = {
  /** Names of session rules (connections, concurrent) already counted for this session. */
  counted: 'rate-limit:counted',
  /** Store keys of the concurrency slots this session holds. */
  slots: 'rate-limit:slots',
  /** The user name of an AUTH attempt whose outcome is not known yet. */
  pendingAuth: 'rate-limit:auth-pending',
} as const;

/** Where a session rule is counted: the first hook at which its key is known. */
type SessionStage = 'connect' | 'helo' | 'mail';
const STAGE_OF_KEY: Partial<Record<KeyKind, SessionStage>> = { ip: 'connect', network: 'connect', listener: 'connect', helo: 'helo', user: 'mail' };

/** Values a key can be taken from, beyond what the session itself says. */
interface Facts {
  readonly helo?: string;
  readonly user?: string;
  readonly sender?: string;
  readonly recipient?: string;
}

/**
 * Maps the SMTP conversation onto the rules:
 *
 * - connections and concurrent: counted once per session, at the first hook
 *   where the key is known (connect for ip/network/listener, HELO for helo,
 *   the first MAIL after AUTH for user); slots go back at disconnect.
 * - messages, recipients, bytes: checked early without counting (MAIL, and
 *   each RCPT with the recipients gathered so far) so a client over its
 *   limit is told before it sends the message; counted at the end of DATA,
 *   when the size is known and every other check has passed, so refused
 *   mail does not use up anyone's quota.
 * - auth-failures: see #settleAuth.
 */
export class RateLimiter {
  readonly #sessionRules: readonly Rule[];
  readonly #authRules: readonly Rule[];
  readonly #messageRules: readonly Rule[];
  readonly #ruleExempt: ReadonlyMap<Rule, NetworkList>;

  constructor(
    rules: readonly Rule[],
    private readonly checks: LimitChecks,
    private readonly exempt: NetworkList,
    ruleExempt: ReadonlyMap<Rule, NetworkList>,
    /** Names this node's concurrency slots, so slots of different nodes never collide. */
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {
    this.#sessionRules = rules.filter((rule) => rule.count === 'connections' || rule.count === 'concurrent');
    this.#authRules = rules.filter((rule) => rule.count === 'auth-failures');
    this.#messageRules = rules.filter((rule) => rule.count === 'messages' || rule.count === 'recipients' || rule.count === 'bytes');
    this.#ruleExempt = ruleExempt;
  }

  onConnect(session: Session): Promise<HookResult> {
    return this.#sessionStage(session, 'connect', {});
  }

  onHelo(session: Session, helo: HeloInfo): Promise<HookResult> {
    return this.#sessionStage(session, 'helo', { helo: helo.hostname });
  }

  /** Refuses AUTH while failures are over a limit (a lockout), else lets the auth plugins decide. */
  async onAuth(session: Session, credentials: Credentials): Promise<HookResult> {
    await this.#settleAuth(session);
    const facts = { user: credentials.username };
    const verdicts = await Promise.all(this.#charges(this.#authRules, session, facts, 1).map((charge) => this.checks.take(charge, true)));
    const result = resultOf(verdicts, session);
    if (isDecisive(result)) return result;
    session.notes.set(NOTES.pendingAuth, credentials.username);
    return next();
  }

  async onMail(session: Session, _transaction: Transaction, from: { address: string }): Promise<HookResult> {
    await this.#settleAuth(session);
    const sessionResult = await this.#sessionStage(session, 'mail', {});
    if (isDecisive(sessionResult)) return sessionResult;
    const rules = this.#messageRules.filter((rule) => !isRecipientKey(rule.key));
    return resultOf(await Promise.all(this.#charges(rules, session, { sender: from.address }, 1).map((charge) => this.checks.take(charge, true))), session);
  }

  /** Would this recipient still fit, counting the ones already accepted in this message? */
  async onRcpt(session: Session, transaction: Transaction, recipient: { address: string }): Promise<HookResult> {
    const charges: Charge[] = [];
    for (const rule of this.#applying(this.#messageRules, session)) {
      const value = this.#value(rule, session, { sender: transaction.from.address, recipient: recipient.address });
      if (value === undefined) continue;
      const alreadyAccepted = transaction.to.filter(
        (to) => this.#value(rule, session, { sender: transaction.from.address, recipient: to.address }) === value,
      ).length;
      if (rule.count === 'recipients') charges.push({ rule, value, cost: alreadyAccepted + 1, mode: modeOf(rule) });
      else if (isRecipientKey(rule.key) && alreadyAccepted === 0) charges.push({ rule, value, cost: 1, mode: modeOf(rule) });
    }
    return resultOf(await Promise.all(charges.map((charge) => this.checks.take(charge, true))), session);
  }

  /**
   * Counts the message. Every charge is checked first and only then taken,
   * so a message refused by one rule does not use up the others. (Two
   * sessions racing for the last unit can still both pass the check; the
   * take then refuses the loser.)
   */
  async onMessage(session: Session, transaction: Transaction, message: IncomingMessage): Promise<HookResult> {
    const charges = this.#messageCharges(session, transaction, message.size);
    const checked = await Promise.all(charges.map((charge) => this.checks.take(charge, true)));
    if (!allPass(checked)) return resultOf(checked, session);
    return resultOf(await Promise.all(charges.map((charge) => this.checks.take(charge, false))), session);
  }

  async onDisconnect(session: Session): Promise<HookResult> {
    await this.#settleAuth(session);
    const slots = (session.notes.get(NOTES.slots) as string[] | undefined) ?? [];
    await Promise.all(slots.map((key) => this.checks.release(key, this.#holder(session))));
    session.notes.delete(NOTES.slots);
    return next();
  }

  /**
   * Counts an AUTH failure. Whether an attempt failed is decided by the auth
   * plugins, which run after us (we must see AUTH first to refuse it during
   * a lockout) and may end the hook chain with their own refusal. So the
   * attempt is remembered and settled at the session's next step (another
   * AUTH, MAIL, or the disconnect): no user by then means it failed. This
   * works whatever the auth plugins' order or answers.
   */
  async #settleAuth(session: Session): Promise<void> {
    const attempted = session.notes.get(NOTES.pendingAuth) as string | undefined;
    if (attempted === undefined) return;
    session.notes.delete(NOTES.pendingAuth);
    if (session.user !== undefined) return;
    // Debt: failures that raced past the check still count, so an attacker in parallel sessions is locked out longer.
    const charges = this.#charges(this.#authRules, session, { user: attempted }, 1, 'debt');
    if (charges.length === 0) return;
    await Promise.all(charges.map((charge) => this.checks.take(charge, false)));
    this.log.debug({ sid: session.id, user: attempted, rules: charges.map((charge) => charge.rule.name) }, 'AUTH failure counted');
  }

  async #sessionStage(session: Session, stage: SessionStage, facts: Facts): Promise<HookResult> {
    const counted = this.#counted(session);
    const due: { rule: Rule; value: string }[] = [];
    for (const rule of this.#applying(this.#sessionRules, session)) {
      if (STAGE_OF_KEY[rule.key] !== stage || counted.has(rule.name)) continue;
      const value = this.#value(rule, session, facts);
      if (value !== undefined) due.push({ rule, value });
    }
    const verdicts = await Promise.all(
      due.map(({ rule, value }) =>
        rule.count === 'concurrent'
          ? this.#acquire(session, rule, value)
          : this.checks.take({ rule, value, cost: 1, mode: 'fit' }, false),
      ),
    );
    // A refused rule is asked again at the next chance (the client may stay and retry).
    verdicts.forEach((verdict, index) => verdict.kind === 'pass' && counted.add(due[index].rule.name));
    return resultOf(verdicts, session);
  }

  async #acquire(session: Session, rule: Rule, value: string): Promise<Verdict> {
    const verdict = await this.checks.acquire(rule, value, this.#holder(session));
    if (verdict.kind === 'pass') {
      const slots = (session.notes.get(NOTES.slots) as string[] | undefined) ?? [];
      slots.push(this.checks.storeKey(rule, value));
      session.notes.set(NOTES.slots, slots);
    }
    return verdict;
  }

  /** What the finished message costs under each message rule: per key, 1 message, n recipients, or its size. */
  #messageCharges(session: Session, transaction: Transaction, size: number): Charge[] {
    const charges: Charge[] = [];
    for (const rule of this.#applying(this.#messageRules, session)) {
      const recipientsPerValue = new Map<string, number>();
      for (const to of transaction.to) {
        const value = this.#value(rule, session, { sender: transaction.from.address, recipient: to.address });
        if (value !== undefined) recipientsPerValue.set(value, (recipientsPerValue.get(value) ?? 0) + 1);
      }
      for (const [value, recipients] of recipientsPerValue) {
        const cost = rule.count === 'messages' ? 1 : rule.count === 'recipients' ? recipients : size;
        charges.push({ rule, value, cost, mode: modeOf(rule) });
      }
    }
    return charges;
  }

  #charges(rules: readonly Rule[], session: Session, facts: Facts, cost: number, mode?: TakeMode): Charge[] {
    const charges: Charge[] = [];
    for (const rule of this.#applying(rules, session)) {
      const value = this.#value(rule, session, facts);
      if (value !== undefined) charges.push({ rule, value, cost, mode: mode ?? modeOf(rule) });
    }
    return charges;
  }

  #applying(rules: readonly Rule[], session: Session): Rule[] {
    const address = session.remote.address;
    if (this.exempt.contains(address)) return [];
    return rules.filter(
      (rule) => (rule.listeners === undefined || rule.listeners.includes(session.listener.name)) && !this.#ruleExempt.get(rule)?.contains(address),
    );
  }

  #value(rule: Rule, session: Session, facts: Facts): string | undefined {
    return keyValue(rule.key, rawValue(rule.key, session, facts), rule);
  }

  #counted(session: Session): Set<string> {
    let counted = session.notes.get(NOTES.counted) as Set<string> | undefined;
    if (!counted) {
      counted = new Set();
      session.notes.set(NOTES.counted, counted);
    }
    return counted;
  }

  #holder(session: Session): string {
    return `${this.nodeId}:${session.id}`;
  }
}

/** Bytes may overdraw the budget (see TakeMode); everything else must fit. */
function modeOf(rule: Rule): TakeMode {
  return rule.count === 'bytes' ? 'debt' : 'fit';
}

function rawValue(kind: KeyKind, session: Session, facts: Facts): string | undefined {
  switch (kind) {
    case 'ip':
    case 'network':
      return session.remote.address;
    case 'helo':
      return facts.helo ?? session.helo;
    case 'user':
      return facts.user ?? session.user;
    case 'listener':
      return session.listener.name;
    case 'sender':
    case 'sender-domain':
      return facts.sender ?? session.transaction?.from.address;
    case 'recipient':
    case 'recipient-domain':
      return facts.recipient;
  }
}
