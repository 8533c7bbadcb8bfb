import type { Readable } from 'node:stream';
import { NotConvertible, planSevenBit } from './downgrade/seven-bit-plan.js';
import { toSevenBit } from './downgrade/seven-bit-stream.js';
import type { OpenOptions, OutgoingContent } from './outbound.js';
import { QueuedContent } from './outgoing-content.js';
import { DeliveryFailure } from './smtp-client/delivery-failure.js';

/** Opens a fresh stream of one form of the message. */
type Source = () => Promise<Readable>;

/**
 * The message of one delivery in the forms a target may ask for with
 * `Delivery.open`: as stored, or converted to 7-bit for a next hop without
 * 8BITMIME (downgrade/). Each form gets the delivery's transforms on a copy
 * of its own, once, when it is first asked for: conversion comes first and
 * signing after it, so a DKIM signature covers exactly the bytes that go
 * out. Whether a form is needed is known only after the next hop's EHLO,
 * which is why the 7-bit form is made on demand.
 */
export class OutgoingCopies {
  #stored: Promise<Source> | undefined;
  #sevenBit: Promise<Source> | undefined;

  constructor(
    private readonly read: Source,
    /** The transform hooks for one copy; undefined when no plugin has any. */
    private readonly transform?: (content: OutgoingContent) => Promise<void>,
  ) {}

  /** Makes the stored form now: a transform that fails decides the group before the target is asked. */
  async prepare(): Promise<void> {
    await this.#storedForm();
  }

  async open(options: OpenOptions = {}): Promise<Readable> {
    const form = await (options.sevenBit ? this.#sevenBitForm() : this.#storedForm());
    return form();
  }

  #storedForm(): Promise<Source> {
    this.#stored ??= this.#transformed(this.read);
    return this.#stored;
  }

  #sevenBitForm(): Promise<Source> {
    this.#sevenBit ??= (async () => {
      const plan = await planSevenBit(await this.read()).catch((error: unknown) => {
        if (!(error instanceof NotConvertible)) throw error;
        // RFC 6152 3: what cannot be converted must not be sent to such a server; it is returned to the sender.
        throw new DeliveryFailure({
          code: 554,
          enhanced: '5.6.3',
          text: `the next hop does not offer 8BITMIME and the message cannot be converted to 7-bit: ${error.message}`,
        });
      });
      if (plan.size === 0) return this.#storedForm(); // declared 8-bit, but 7-bit already
      return this.#transformed(async () => toSevenBit(await this.read(), plan));
    })();
    return this.#sevenBit;
  }

  async #transformed(source: Source): Promise<Source> {
    if (!this.transform) return source;
    const content = await QueuedContent.load(source);
    await this.transform(content);
    return () => content.stream();
  }
}
