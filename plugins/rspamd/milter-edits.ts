import type { MessageHeaders } from 'petrel';
import type { RspamdAnswer } from './rspamd-answer.js';

type Milter = NonNullable<RspamdAnswer['milter']>;

/**
 * The header edits rspamd asks for in its `milter` block (what its milter
 * proxy would do): `remove_headers` first, `{ name: n }` with 0 for every
 * copy, 1 for the first, -1 for the last; then `add_headers`. A header with
 * `order` 0 or more goes at the top of the block (Petrel cannot insert in
 * the middle), otherwise at the bottom, as milter's addheader does.
 */
export function applyMilterEdits(headers: MessageHeaders, milter: Milter | undefined): void {
  for (const [name, which] of Object.entries(milter?.remove_headers ?? {})) removeOccurrence(headers, name, which);
  for (const [name, added] of Object.entries(milter?.add_headers ?? {})) {
    for (const header of Array.isArray(added) ? added : [added]) {
      const { value, order } = typeof header === 'string' ? { value: header, order: -1 } : header;
      if ((order ?? -1) >= 0) headers.prepend(name, value);
      else headers.append(name, value);
    }
  }
}

function removeOccurrence(headers: MessageHeaders, name: string, which: number): void {
  if (which === 0) return headers.remove(name);
  const count = headers.get(name).length;
  const target = which > 0 ? which - 1 : count + which;
  // removeWhere walks from the bottom: the k-th call is occurrence count-1-k from the top.
  let index = count;
  headers.removeWhere(name, () => --index === target);
}
