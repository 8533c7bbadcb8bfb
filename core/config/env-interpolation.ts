import { isPair, isScalar, isSeq, parse as parseYamlValue, visit, type Scalar } from 'yaml';
import type { ConfigIssue } from './config-error.js';
import { formatPath } from './config-error.js';
import type { YamlSource } from './yaml-source.js';

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in string values with environment
 * variables, so secrets stay out of the file. `$${` writes a literal `${`.
 * An unquoted value that is only a reference takes the type the text would
 * have had in YAML (`port: ${PORT}` gives a number); quoted ones stay strings.
 * A variable that is unset and has no default is an error at its line.
 */
export function interpolateEnvironment(source: YamlSource, env: NodeJS.ProcessEnv): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  visit(source.document, {
    Scalar(_key, node: Scalar, path) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const original = node.value;
      const missing: string[] = [];
      const replaced = original.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
        if (name === undefined) return '${';
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        missing.push(name);
        return match;
      });
      if (missing.length > 0) {
        const at = node.range ? source.position(node.range[0]) : { line: 0, column: 0 };
        const keyPath = keyPathOf([...path, node]);
        issues.push({
          file: source.file,
          line: at.line,
          column: at.column,
          path: formatPath(keyPath),
          message: `environment variable ${missing.join(', ')} is not set (set it, or write \${${missing[0]}:-default})`,
        });
        return;
      }
      const wholeValueIsOneReference = /^\$\{[^}]+\}$/.test(original);
      node.value =
        wholeValueIsOneReference && node.type === 'PLAIN' ? parseYamlValue(replaced) ?? replaced : replaced;
    },
  });
  return issues;
}

/** ['plugins', 0, 'options', 'password'] from the ancestors yaml's visit() gives. */
function keyPathOf(chain: readonly unknown[]): (string | number)[] {
  const out: (string | number)[] = [];
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (isPair(parent) && isScalar(parent.key) && child === parent.value) out.push(String(parent.key.value));
    else if (isSeq(parent)) out.push(parent.items.indexOf(child as never));
  }
  return out;
}
