// Builds the web console into dist/console/ (run by `npm run build`): one
// script and one style sheet bundled by esbuild from this folder, and the
// page that loads them. Everything the console needs ships in the package:
// no CDN, no web font.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const out = fileURLToPath(new URL('../../../dist/console/', import.meta.url));

await mkdir(out, { recursive: true });
await build({
  entryPoints: { app: here('./main.tsx') },
  outdir: out,
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
for (const file of ['index.html', 'icon.svg']) await copyFile(here(`./${file}`), `${out}${file}`);
