import { ScanFailure, z } from 'petrel';

/** A header rspamd asks to add: a value, or a value with a position, or several. */
const addedHeader = z.union([z.string(), z.looseObject({ value: z.string(), order: z.number().optional() })]);

/**
 * The part of rspamd's `/checkv2` answer Petrel acts on
 * (https://rspamd.com/doc/developers/protocol.html). Anything else in it is ignored.
 */
const answerSchema = z.looseObject({
  action: z.string(),
  score: z.number(),
  required_score: z.number().optional(),
  symbols: z.record(z.string(), z.looseObject({ score: z.number().optional() })).optional(),
  messages: z.looseObject({ smtp_message: z.string().optional() }).optional(),
  /** The new Subject for `rewrite subject`. */
  subject: z.string().optional(),
  milter: z
    .looseObject({
      add_headers: z.record(z.string(), z.union([addedHeader, z.array(addedHeader)])).optional(),
      remove_headers: z.record(z.string(), z.number()).optional(),
    })
    .optional(),
});

export type RspamdAnswer = z.output<typeof answerSchema>;

/** rspamd's answer from the bytes it sent; anything else is a ScanFailure naming what was wrong. */
export function parseAnswer(body: string): RspamdAnswer {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new ScanFailure(`rspamd's answer is not JSON: ${preview(body)}`);
  }
  const parsed = answerSchema.safeParse(json);
  if (!parsed.success) {
    const error = (json as { error?: unknown } | null)?.error;
    throw new ScanFailure(typeof error === 'string' ? `rspamd answered with an error: ${error}` : `rspamd's answer makes no sense: ${preview(body)}`);
  }
  return parsed.data;
}

/** The matched symbols, highest score first, as `NAME(score)`. */
export function symbolsOf(answer: RspamdAnswer): string[] {
  return Object.entries(answer.symbols ?? {})
    .map(([name, symbol]) => ({ name, score: symbol.score ?? 0 }))
    .sort((a, b) => b.score - a.score || a.name.localeCompare(b.name))
    .map(({ name, score }) => `${name}(${score.toFixed(2)})`);
}

function preview(body: string): string {
  const line = body.replace(/\s+/g, ' ').trim();
  return line === '' ? '(empty)' : line.length > 80 ? `${line.slice(0, 80)}…` : line;
}
