import type { z } from 'zod';
import type { ConfigIssue } from './config-error.js';
import { formatPath } from './config-error.js';
import { didYouMean } from '../util/nearest-name.js';
import { knownKeysAt } from './schema-keys.js';
import { issueAt, type ConfigLocator, type KeyPath } from './yaml-source.js';

/**
 * Turns zod's issues into ConfigIssues that say where (file:line:column and
 * key path), what was found and what was expected. `prefix` is where the
 * validated value sits in the file (plugin options live under
 * `plugins[3].options`). With the `schema` that was validated, an unknown
 * key is answered with the nearest known one ("did you mean localDomains?").
 */
export function toConfigIssues(
  error: z.ZodError,
  locator: ConfigLocator,
  prefix: KeyPath = [],
  subject = '',
  schema?: z.ZodType,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === 'unrecognized_keys') {
      const known = schema ? knownKeysAt(schema, issue.path as (string | number)[]) : [];
      for (const key of issue.keys) {
        const at = locator.locateKey([...path, key]);
        const suggestion = didYouMean(key, known);
        issues.push({
          file: locator.file,
          ...at,
          path: formatPath([...path, key]),
          message: `${subject}unknown key "${key}"${suggestion || ' (check its spelling; docs/configuration.md lists every key)'}`,
        });
      }
      continue;
    }
    issues.push(issueAt(locator, path, subject + describe(issue)));
  }
  return issues;
}

function describe(issue: z.core.$ZodIssue): string {
  const found = 'input' in issue ? `, found ${show(issue.input)}` : '';
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? `required ${issue.expected} is missing` : `expected ${issue.expected}${found}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}${found}`;
    case 'too_small':
      return `${issue.message.replace(/^Too small: /, '')}${found}`;
    case 'too_big':
      return `${issue.message.replace(/^Too big: /, '')}${found}`;
    case 'invalid_format':
      return `${issue.message}${found}`;
    case 'invalid_union':
      return `expected ${unionExpectation(issue)}${found}`;
    default:
      return `${issue.message}${found}`;
  }
}

function unionExpectation(issue: z.core.$ZodIssueInvalidUnion): string {
  const expected = new Set<string>();
  for (const branch of issue.errors) {
    for (const inner of branch) {
      if (inner.code === 'invalid_type') expected.add(inner.expected);
      else expected.add(inner.message);
    }
  }
  return [...expected].join(' or ') || 'a different value';
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
