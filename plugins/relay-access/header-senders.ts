import addressparser from 'nodemailer/lib/addressparser';
import type { MessageHeaders } from 'petrel';

/** An address a message names as its author (From:) or as the one who sent it for the author (Sender:). */
export interface HeaderSender {
  readonly field: 'From' | 'Sender';
  readonly address: string;
}

/**
 * Every address in the From: and Sender: fields of a message, as
 * nodemailer's addressparser reads them (display names, quoted strings,
 * comments and groups are handled there, not by a regular expression):
 * `"alice@example.org" <bob@example.org>` names bob. Several From: fields,
 * or several addresses in one, all count. A mailbox without an address (an
 * empty group, a bare display name) is not one; a field with only such
 * things names nobody.
 */
export function headerSenders(headers: MessageHeaders): HeaderSender[] {
  const senders: HeaderSender[] = [];
  for (const field of ['From', 'Sender'] as const) {
    for (const value of headers.get(field)) {
      for (const mailbox of addressparser(value, { flatten: true })) {
        if (mailbox.address) senders.push({ field, address: mailbox.address });
      }
    }
  }
  return senders;
}
