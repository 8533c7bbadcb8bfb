import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ConfigIssue } from './config-error.js';
import { formatPath } from './config-error.js';

export type KeyPath = readonly (string | number)[];

/** Finds where a key path sits in a config, for error messages. */
export interface ConfigLocator {
  readonly file: string;
  /** Line and column of the value at `path`, or of its nearest existing parent. */
  locate(path: KeyPath): { line: number; column: number };
  /** Line and column of the key itself (for unknown keys). */
  locateKey(path: KeyPath): { line: number; column: number };
}

/** A ConfigIssue for the value at `path`. */
export function issueAt(locator: ConfigLocator, path: KeyPath, message: string): ConfigIssue {
  return { file: locator.file, ...locator.locate(path), path: formatPath(path), message };
}

/** A config that came as an object (tests, embedding): no lines to point at. */
export function objectLocator(file = '<config object>'): ConfigLocator {
  const nowhere = { line: 0, column: 0 };
  return { file, locate: () => nowhere, locateKey: () => nowhere };
}

/**
 * A parsed YAML config file that remembers where every node came from.
 * Duplicate keys are errors (yaml's `uniqueKeys`), so a key given twice can
 * never silently override the first.
 */
export class YamlSource implements ConfigLocator {
  readonly document: Document;
  readonly #lines = new LineCounter();

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.document = parseDocument(text, { lineCounter: this.#lines, uniqueKeys: true, prettyErrors: false });
  }

  /** Syntax errors, duplicate keys and other YAML-level problems. */
  syntaxIssues(): ConfigIssue[] {
    return [...this.document.errors, ...this.document.warnings].map((error) => {
      const at = this.position(error.pos[0]);
      const message = error.code === 'DUPLICATE_KEY' ? 'key appears twice (each key may be given once)' : error.message.split('\n')[0];
      return { file: this.file, ...at, path: '', message: `YAML ${message}` };
    });
  }

  locate(path: KeyPath): { line: number; column: number } {
    for (let length = path.length; length >= 0; length--) {
      const node = this.document.getIn(path.slice(0, length), true) as Node | undefined;
      if (node && node.range) return this.position(node.range[0]);
    }
    return { line: 1, column: 1 };
  }

  locateKey(path: KeyPath): { line: number; column: number } {
    const parent = path.length === 0 ? this.document.contents : this.document.getIn(path.slice(0, -1), true);
    const key = path[path.length - 1];
    if (isMap(parent)) {
      for (const pair of parent.items) {
        if (isScalar(pair.key) && pair.key.value === key && pair.key.range) return this.position(pair.key.range[0]);
      }
    }
    return this.locate(path);
  }

  position(offset: number): { line: number; column: number } {
    const { line, col } = this.#lines.linePos(offset);
    return { line, column: col };
  }
}
