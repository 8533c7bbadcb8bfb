/** One thing wrong with a configuration, located as precisely as we can. */
export interface ConfigIssue {
  readonly file: string;
  /** 1-based; 0 when the issue has no place in a file (a config given as an object). */
  readonly line: number;
  readonly column: number;
  /** Key path like `listeners[0].port`, '' for the document itself. */
  readonly path: string;
  /** What was wrong and what was expected. */
  readonly message: string;
}

/**
 * A configuration that cannot be used. Its message lists every issue as
 * `file:line:column key.path: what is wrong`, the form editors and CI logs
 * turn into links.
 */
export class ConfigError extends Error {
  readonly code = 'PETREL_CONFIG_INVALID';

  constructor(readonly issues: readonly ConfigIssue[]) {
    super(formatIssues(issues));
    this.name = 'ConfigError';
  }
}

export function formatIssue(issue: ConfigIssue): string {
  const place = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file;
  return issue.path === '' ? `${place}: ${issue.message}` : `${place} ${issue.path}: ${issue.message}`;
}

function formatIssues(issues: readonly ConfigIssue[]): string {
  const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
  return `configuration has ${count}:\n${issues.map((issue) => `  ${formatIssue(issue)}`).join('\n')}`;
}

/** `listeners[0].port` from `['listeners', 0, 'port']`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}
