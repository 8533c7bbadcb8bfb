import { readFileSync } from 'node:fs';

/** Petrel's package directory: this file is compiled to <package>/dist/core/version.js. */
export const PACKAGE_ROOT = new URL('../../', import.meta.url);

/** The version of the running Petrel, from its package.json (what `petrel --version` prints). */
export const PETREL_VERSION: string = (JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as { version: string }).version;
