import type { z } from 'zod';
import type { KeyPath } from './yaml-source.js';

/** The parts of a zod schema's definition this walk reads; zod 4 keeps them on `_zod.def`. */
interface Definition {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly element?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly items?: readonly z.ZodType[];
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
  readonly options?: readonly z.ZodType[];
  readonly left?: z.ZodType;
  readonly right?: z.ZodType;
  readonly getter?: () => z.ZodType;
}

const definition = (schema: z.ZodType): Definition => (schema as unknown as { _zod: { def: Definition } })._zod.def;

/**
 * The keys a schema knows for the mapping at `path` (e.g. the keys of
 * `server`, or of one plugin entry's options), so an unknown key can be
 * answered with the nearest known one. Wrappers (defaults, pipes, unions)
 * are looked through; a path the schema does not describe gives none.
 */
export function knownKeysAt(schema: z.ZodType, path: KeyPath): string[] {
  const keys = new Set<string>();
  for (const object of schemasAt(schema, path, 0)) {
    for (const key of Object.keys(definition(object).shape ?? {})) keys.add(key);
  }
  return [...keys];
}

/** The object schemas found at `path`, looking through wrappers; several when a union allows several shapes. */
function schemasAt(schema: z.ZodType, path: KeyPath, depth: number): z.ZodType[] {
  if (depth > 64) return [];
  const def = definition(schema);
  const through = (...inner: (z.ZodType | undefined)[]) => inner.flatMap((next) => (next ? schemasAt(next, path, depth + 1) : []));
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
    case 'nonoptional':
      return through(def.innerType);
    case 'pipe':
      return through(def.in);
    case 'lazy':
      return through(def.getter?.());
    case 'union':
      return through(...(def.options ?? []));
    case 'intersection':
      return through(def.left, def.right);
  }
  if (path.length === 0) return def.type === 'object' ? [schema] : [];
  const [part, ...rest] = path;
  const step = (next: z.ZodType | undefined) => (next ? schemasAt(next, rest, depth + 1) : []);
  switch (def.type) {
    case 'object':
      return typeof part === 'string' ? step(def.shape?.[part]) : [];
    case 'array':
      return typeof part === 'number' ? step(def.element) : [];
    case 'tuple':
      return typeof part === 'number' ? step(def.items?.[part]) : [];
    case 'record':
      return step(def.valueType);
    default:
      return [];
  }
}
