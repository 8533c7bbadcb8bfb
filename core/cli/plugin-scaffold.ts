/**
 * The files of a new plugin package (`petrel plugin new`): a TypeScript
 * project that builds to ESM, a plugin with an options schema and one hook,
 * a test that boots a real server with it through `petrel/testing` and
 * speaks SMTP to it, and a README. Petrel is a peer dependency, so the
 * plugin runs on the Petrel that loads it, and a dev dependency, so the
 * test has one to boot.
 */

export interface ScaffoldSettings {
  /** The npm package name, e.g. `petrel-plugin-stamp` or `@acme/petrel-stamp`. */
  readonly packageName: string;
  /** The running Petrel's version: the peer dependency accepts its minor series. */
  readonly petrelVersion: string;
  /** Dev dependency ranges, taken from Petrel's own so the toolchains match. */
  readonly typescript: string;
  readonly typesNode: string;
  /** `engines.node` of Petrel. */
  readonly node: string;
}

/** A valid npm package name, scoped or not, lower case. */
export const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;

/** The plugin's meta.name: the package name without scope and without a `petrel-plugin-` prefix. */
export function pluginNameOf(packageName: string): string {
  return packageName.replace(/^@[^/]+\//, '').replace(/^petrel-plugin-/, '');
}

/** File path (relative to the package directory) → content. */
export function scaffoldFiles(settings: ScaffoldSettings): Record<string, string> {
  const name = pluginNameOf(settings.packageName);
  const className = name
    .split(/[^a-z0-9]+/i)
    .filter(Boolean)
    .map((word) => word[0].toUpperCase() + word.slice(1))
    .join('')
    .replace(/^(?=\d)/, 'Plugin');
  const header = `X-${className}`;
  return {
    'package.json': `${JSON.stringify(packageJson(settings, name), null, 2)}\n`,
    'tsconfig.json': TSCONFIG,
    '.gitignore': 'node_modules/\ndist/\n',
    'src/index.ts': pluginSource(name, className, header),
    'test/plugin.test.ts': pluginTest(name, header),
    'README.md': readme(settings.packageName, name, header),
  };
}

function packageJson(settings: ScaffoldSettings, name: string): Record<string, unknown> {
  const [major, minor] = settings.petrelVersion.split('.');
  const petrel = `^${major}.${minor}.0`;
  return {
    name: settings.packageName,
    version: '0.1.0',
    description: `A Petrel plugin: ${name}`,
    type: 'module',
    exports: './dist/src/index.js',
    types: './dist/src/index.d.ts',
    files: ['dist/src', 'README.md'],
    keywords: ['petrel', 'petrel-plugin', 'smtp', 'mta'],
    engines: { node: settings.node },
    scripts: {
      build: 'tsc -p tsconfig.json',
      pretest: 'npm run build --silent',
      test: 'node --test "dist/test/**/*.test.js"',
      prepack: 'npm run build --silent',
    },
    peerDependencies: { petrel: petrel },
    devDependencies: { '@types/node': settings.typesNode, petrel: petrel, typescript: settings.typescript },
    // Petrel brings a Node.js it supports through the npm package `node`, whose install script fetches it.
    allowScripts: { node: true },
  };
}

const TSCONFIG = `{
  // Petrel constructs plugins with tsyringe: decorators on, and their metadata emitted.
  "compilerOptions": {
    "target": "ES2024",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "lib": ["ES2024"],
    "types": ["node"],
    "rootDir": ".",
    "outDir": "dist",
    "strict": true,
    "experimentalDecorators": true,
    "emitDecoratorMetadata": true,
    "declaration": true,
    "sourceMap": true,
    "skipLibCheck": true,
    "isolatedModules": true
  },
  "include": ["src", "test"]
}
`;

function pluginSource(name: string, className: string, header: string): string {
  return `import { inject, injectable, next, TOKENS, z, type HookRegistrar, type Logger, type OptionsOf, type PluginMeta } from 'petrel';

/**
 * The \`options:\` of this plugin's entry in mta.config.yaml, checked when
 * Petrel starts: a wrong or misspelt key stops the boot with its file and line.
 */
export const options = z.strictObject({
  header: z.string().regex(/^[!-9;-~]+$/, 'a header field name').default('${header}').describe('the header field added to each message'),
  text: z.string().min(1).default('seen by ${name}').describe('its value'),
});

/**
 * ${name}: adds a header to every message Petrel accepts. Replace the hook
 * with what your plugin does; docs/hooks.md in Petrel lists every hook, and
 * docs/writing-a-plugin.md what you can inject.
 */
@injectable()
export default class ${className} {
  static readonly meta: PluginMeta = { name: '${name}', version: '0.1.0', description: 'adds a header to every accepted message' };
  static readonly options = options;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: OptionsOf<typeof options>,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {}

  register(hooks: HookRegistrar): void {
    // The message hook runs once the whole message is on disk, before it is queued:
    // header edits made here are what the queue stores and delivers.
    hooks.on('message', (session, _transaction, message) => {
      message.headers.prepend(this.opts.header, this.opts.text);
      this.log.debug({ sid: session.id, header: this.opts.header }, 'header added');
      return next();
    });
  }
}
`;
}

function pluginTest(name: string, header: string): string {
  return `import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { text } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from 'petrel/testing';

/** The compiled plugin: this test runs from dist/test/, the plugin is in dist/src/. */
const plugin = fileURLToPath(new URL('../src/index.js', import.meta.url));

describe('${name}', () => {
  let server: TestServer;

  before(async () => {
    // A real Petrel on 127.0.0.1 and a free port, its data in a temp directory.
    server = await startTestServer({
      plugins: [{ path: plugin, options: { text: 'tested' } }, { name: 'relay-access' }, { name: 'queue-journal' }],
    });
  });
  after(() => server.stop());

  it('adds its header to a message received over SMTP', async () => {
    const client = await server.client();
    const reply = await client.sendMail('sender@example.org', ['postmaster@localhost'], 'Subject: hello\\r\\n\\r\\nHello.\\r\\n');
    assert.match(reply.raw, /^250 /);
    await client.quit();

    const [queued] = await server.petrel.queue.list();
    const stored = await text(await server.petrel.queue.read(queued.id));
    assert.match(stored, /^${header}: tested\\r$/m);
  });

  it('refuses a bad option with the key that is wrong', async () => {
    await assert.rejects(
      startTestServer({ plugins: [{ path: plugin, options: { header: 'not a header' } }, { name: 'queue-journal' }] }),
      /plugins\\[0\\]\\.options\\.header: plugin ${name}: a header field name/,
    );
  });
});
`;
}

function readme(packageName: string, name: string, header: string): string {
  return `# ${packageName}

A plugin for the Petrel MTA. It adds a header (\`${header}\` by
default) to every message Petrel accepts.

## Use it

In the site directory (the one \`petrel init\` made, with the site's \`package.json\`):

\`\`\`sh
npm install ${packageName}
\`\`\`

and in \`mta.config.yaml\`:

\`\`\`yaml
plugins:
  - package: ${packageName}
    options:
      text: seen by ${name}
\`\`\`

## Options

| option | default | meaning |
|---|---|---|
| \`header\` | \`${header}\` | the header field added to each message |
| \`text\` | \`seen by ${name}\` | its value |

## Develop

\`\`\`sh
npm install       # petrel comes as a dev dependency (npm install --save-dev /path/to/petrel-x.y.z.tgz for a local build)
npm test          # builds, then boots a real server with the plugin and talks SMTP to it
npm pack          # the package to install in a site
\`\`\`

Petrel is a peer dependency: the plugin runs on the Petrel that loads it. Import
\`inject\` and \`injectable\` from \`petrel\`, not from \`tsyringe\`, so the plugin's
decorators register with Petrel's container.
`;
}
