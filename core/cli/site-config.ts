import { parseDocument } from 'yaml';

export interface SiteSettings {
  /** The server's name in the greeting and trace headers (`server.hostname`). */
  readonly hostname: string;
  /** The domain whose mail is kept here (`server.localDomains`). */
  readonly domain: string;
  /** The installed Petrel's package directory, where its docs/ and plugins/<name>/README.md are. */
  readonly petrelDir: string;
}

/**
 * The shipped mta.config.yaml turned into a site's: its host name and local
 * domain set, its comments kept (values are replaced where they stand in the
 * text, so the commented profile reads as before), examples in comments
 * speaking of the site's domain, commands spelled as an installed `petrel`
 * is run, and the documentation it points to found in the installed Petrel.
 */
export function siteConfigText(shipped: string, site: SiteSettings): string {
  const document = parseDocument(shipped);
  const edits = [
    { path: ['server', 'hostname'], text: site.hostname },
    { path: ['server', 'localDomains'], text: `[${site.domain}]` },
  ].map(({ path, text }) => {
    const node = document.getIn(path, true) as { range?: [number, number, number] } | undefined;
    if (!node?.range) throw new Error(`the shipped config has no ${path.join('.')} to set`);
    const [start, end] = node.range;
    // Keep a comment after the value where it was, so the column of comments stays aligned.
    const padding = /^ +(?=#)/.exec(shipped.slice(end))?.[0].length ?? 0;
    const spaces = padding === 0 ? '' : ' '.repeat(Math.max(1, padding - (text.length - (end - start))));
    return { start, end: end + padding, text: text + spaces };
  });
  let text = shipped;
  for (const edit of edits.sort((a, b) => b.start - a.start)) text = text.slice(0, edit.start) + edit.text + text.slice(edit.end);
  return text
    .split('\n')
    .map((line) => {
      if (line.startsWith('# yaml-language-server:')) return `# yaml-language-server: $schema=${site.petrelDir}/docs/mta.config.schema.json`;
      if (line.startsWith("# Petrel's shipped configuration")) return `# Petrel for ${site.hostname}, made by petrel init from the shipped profile.`;
      const comment = commentStart(line);
      if (comment < 0) return line;
      const remark = line
        .slice(comment)
        .replace(/npx petrel/g, 'petrel')
        .replace(/@localhost\b/g, `@${site.domain}`)
        .replace(/example\.org/g, site.domain)
        .replace(/(?<![\w./])(docs|plugins)\//g, `${site.petrelDir}/$1/`);
      return line.slice(0, comment) + remark;
    })
    .join('\n');
}

/** Where a line's comment starts (a # at the start or after a space, outside quotes), or -1. */
function commentStart(line: string): number {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quote) {
      if (char === quote) quote = undefined;
    } else if (char === '"' || char === "'") {
      quote = char;
    } else if (char === '#' && (i === 0 || /\s/.test(line[i - 1]))) {
      return i;
    }
  }
  return -1;
}
